"""Word lists behind the A.2 reclassification rules and the offline spaCy extractor.

Lists hold lemmas (singular, lower case) of head nouns: a phrase is judged by its head noun,
"a cloudy sky" by "sky", "long brown hair" by "hair". They are deliberately small and
concrete; an entry belongs here only if its class is unambiguous in video captions. Our
choice throughout; the paper gives one example rule ("cloud" is background, A.2).
"""

# Human subjects (paper 3.1: "subjects (e.g., human or animal)").
PERSON_NOUNS = frozenset("""
man woman boy girl person child kid baby infant toddler teenager teen adult lady gentleman guy
people youngster newborn bride groom husband wife mother father mom dad mum son daughter
brother sister grandmother grandfather grandma grandpa aunt uncle friend boyfriend girlfriend
student teacher worker chef cook doctor nurse surgeon dentist patient player athlete dancer
singer musician guitarist pianist drummer violinist artist painter sculptor farmer soldier
officer policeman policewoman firefighter fireman driver rider cyclist biker skier snowboarder
surfer skateboarder swimmer runner jogger climber hiker diver fisherman hunter sailor pilot
astronaut boxer wrestler fighter gymnast golfer model actor actress host presenter reporter
journalist anchor speaker customer vendor seller shopkeeper cashier waiter waitress bartender
barber hairdresser mechanic carpenter builder engineer scientist businessman businesswoman
mailman postman cowboy clown magician monk priest nun king queen prince princess knight warrior
blonde brunette individual teammate coach referee pedestrian tourist traveler traveller
passenger shopper gamer streamer vlogger youtuber influencer chef baker butcher tailor
""".split())

ANIMAL_NOUNS = frozenset("""
animal pet dog puppy cat kitten kitty horse pony foal cow calf bull ox sheep lamb goat pig
piglet chicken hen rooster chick duck duckling goose swan bird parrot eagle hawk falcon owl
pigeon dove crow raven seagull gull penguin flamingo peacock hummingbird ostrich fish goldfish
salmon shark whale dolphin seal otter turtle tortoise frog toad snake lizard iguana gecko
crocodile alligator monkey ape gorilla chimpanzee orangutan elephant giraffe zebra lion tiger
leopard cheetah jaguar panther bear panda wolf fox deer fawn rabbit bunny hare hamster guinea
mouse rat squirrel chipmunk kangaroo koala camel donkey mule llama alpaca buffalo bison moose
elk yak hippo hippopotamus rhino rhinoceros raccoon hedgehog bat butterfly moth bee wasp spider
ant beetle ladybug caterpillar snail worm dragonfly insect crab lobster shrimp octopus squid
jellyfish stingray cub collie
""".split())

LIVING_NOUNS = PERSON_NOUNS | ANIMAL_NOUNS

# Nouns naming several individuals at once: a subject headed by one is plural
# ("a group of people", "a herd of cows", "a couple").
COLLECTIVE_NOUNS = frozenset("""
group crowd team family couple pair herd flock pack swarm troop band audience class army gang
squad crew choir orchestra colony litter bunch fleet mob horde pod school bevy parade
""".split())

# Determiners and adjectives that make a singular-looking head plural ("several dog" is not
# English, but "multiple people", "both men", "many birds" appear in captions).
PLURAL_QUANTIFIERS = frozenset("""
two three four five six seven eight nine ten eleven twelve dozen dozens hundreds thousands
several many multiple numerous various few both some
""".split())

# Scene words: "the background spaces that appear in most of the image area" (Figure 7).
# A.2's example rule ("cloud" is background, not an object) generalised to other scene words.
BACKGROUND_NOUNS = frozenset("""
sky cloud sea ocean water lake river pond stream waterfall beach shore coast seaside sand
desert dune field meadow grass lawn grassland prairie forest wood woods jungle mountain hill
valley canyon cliff snow ice glacier road street highway path trail sidewalk alley avenue city
town village downtown park garden yard backyard courtyard room bedroom kitchen bathroom office
classroom hall hallway corridor lobby studio gym restaurant cafe bar pub shop store market
supermarket mall church temple library museum hospital warehouse factory garage airport
station stadium arena court pitch track pool playground farm countryside landscape scenery
horizon fog mist rain space underwater background interior outdoors
indoors wall floor ground ceiling cave tunnel skyline cityscape universe galaxy savanna
savannah plain plains harbor harbour pier dock lakeside riverside seashore bay island
stage ballroom rooftop platform runway slope hillside mud wave plaza square zoo barn paddock ranch
site
""".split())

# Multi-word places whose head alone is not a place ("a boxing ring" vs "a ring"),
# matched on the phrase's last two words.
BACKGROUND_PHRASES = frozenset({"boxing ring", "parking lot", "petting zoo"})

# spaCy entity labels of named places ("Central Park", "Canada", "the Alps"): background.
PLACE_ENTITY_LABELS = frozenset({"GPE", "LOC", "FAC"})

# Time words name a time, not a thing in the frame ("at night", "at sunset"): no entity.
TIME_NOUNS = frozenset("""
night sunset sunrise dusk dawn twilight morning evening afternoon noon midnight daytime
nighttime day today tonight week weekend season winter spring summer autumn fall
""".split())

# Activities, games and events are not visually separable things ("does yoga",
# "play catch", "at a concert"); the things they use are ("a tennis ball").
ACTIVITY_NOUNS = frozenset("""
yoga chess catch fetch football soccer basketball baseball tennis golf volleyball hockey
song joke weather tutorial speech concert party wedding race performance lesson
interview workout exercise dance trick cartoon
""".split())

# Measure words are quantifiers (Figure 7 rule 1): "a piece of paper" is "paper".
MEASURE_NOUNS = frozenset("piece pair slice lot handful bit kind sort set".split())

# Verbs of self-motion (lemmas): their grammatical subject is a subject whatever it is, so a
# moving vehicle or machine carries the clip's foreground motion (paper Figure 5 conditions
# on "a car"). Static verbs ("sits", "is parked") do not make a thing a subject.
MOTION_VERBS = frozenset("""
drive ride fly sail glide soar hover float drift cruise roll race speed zoom rush travel move
go come pass cross enter leave exit depart arrive approach land launch climb ascend descend
rise fall drop dive slide skid swerve turn spin rotate revolve swing bounce crash run walk jog
sprint gallop trot crawl swim circle orbit head tow haul plow push pull dig lift drill taxi
accelerate steer speed navigate chug rumble
""".split())
PARTICLE_MOTION_VERBS = {"take": {"off"}}  # "take" alone is not motion ("takes a photo")

# Nouns that are in almost every caption but never a visually separable thing in the frame;
# the offline extractor skips them (the LLM is told the same by Figure 7's definitions).
NON_VISUAL_NOUNS = frozenset("""
camera video footage clip scene shot view image picture frame time day moment way side front
back top bottom middle center centre left right edge distance foreground area place spot lot
kind type sort part end beginning rest closeup close-up angle motion movement action sound
music voice conversation story thing something someone somebody everything everyone
""".split())

# Irregular plural forms, for the fallback plural test when a phrase cannot be aligned to
# spaCy tokens.
IRREGULAR_PLURALS = frozenset("""
people men women children mice geese feet teeth police cattle folks oxen
""".split())

# Phrases whose head noun is a person or animal word but which name a thing (checked on the
# phrase's last words): "a teddy bear" is an object, not an animal subject.
NOT_LIVING_PHRASES = frozenset({
    "teddy bear", "gummy bear", "hot dog", "corn dog", "stuffed animal", "stuffed dog",
    "toy dog", "toy horse", "rocking horse", "toy soldier", "snow man", "snowman", "scarecrow",
    "paper crane", "action figure", "chess king", "chess queen", "chess knight", "king size",
    "rubber duck", "seahorse", "wooden horse", "clothes horse", "mannequin", "statue",
})


def is_living(phrase: str, head_lemma: str) -> bool:
    """Whether a phrase with this head lemma names a person or an animal."""
    words = phrase.lower().split()
    if " ".join(words[-2:]) in NOT_LIVING_PHRASES or (words and words[-1] in NOT_LIVING_PHRASES):
        return False
    return head_lemma in LIVING_NOUNS


def is_plural_living(word: str) -> bool:
    """A plural form of a known person/animal noun ("dogs", "puppies", "wolves", "men"):
    the backstop for tagger errors on short captions ("Dogs bark." tags "Dogs" as NNP)."""
    w = word.lower()
    if w in IRREGULAR_PLURALS:
        return True
    if w in LIVING_NOUNS or not w.endswith("s"):
        return False
    stems = [w[:-1], w[:-2]]  # dogs, foxes / horses
    if w.endswith("ies"):
        stems.append(w[:-3] + "y")  # puppies
    if w.endswith("ves"):
        stems += [w[:-3] + "f", w[:-3] + "fe"]  # wolves, wives
    return any(s in LIVING_NOUNS for s in stems)
