"""Is an entity word a person? The person lexicon the face and localization stages share.

Paper 3.1 crops faces for human subjects only. Whether a subject is human is decided from its
entity word's head noun (its last word): a word in HUMAN_WORDS is a person, a word in
NON_HUMAN_WORDS (animals, vehicles, objects that may show a face-like pattern) is not, and any
other word is unknown: callers try it and record that they did (the faces table's `human_by`).
"""
from __future__ import annotations

# Head nouns that denote one person (our choice; extend as captions demand). Plural forms are
# absent on purpose: plural subjects are rejected upstream (paper A.2).
HUMAN_WORDS = frozenset("""
    man woman person boy girl child kid baby toddler infant lady gentleman guy teen teenager
    adult human individual someone somebody youngster male female
    mother father mom mum dad son daughter brother sister grandmother grandfather grandma
    grandpa husband wife bride groom friend
    player athlete worker chef cook doctor nurse teacher student soldier officer policeman
    policewoman fireman firefighter driver rider cyclist biker skier surfer skater
    skateboarder snowboarder dancer singer musician guitarist drummer pianist violinist
    actor actress host presenter reporter journalist anchor speaker customer farmer fisherman
    climber runner jogger swimmer diver gymnast boxer wrestler fighter golfer hiker model
    businessman businesswoman shopper vendor seller waiter waitress bartender barber mechanic
    pilot astronaut scientist artist painter carpenter craftsman cameraman salesman
    sportsman spokesman chairman repairman gamer streamer vlogger youtuber tourist traveler
    traveller passenger pedestrian referee coach instructor trainer magician clown
""".split())

# Head nouns that are never one person (our choice): animals first, then things that carry
# faces or face-like patterns (dolls, statues, posters) or are ridden by people (vehicles).
NON_HUMAN_WORDS = frozenset("""
    dog puppy cat kitten horse pony foal cow calf bull ox sheep lamb goat pig piglet bird
    parrot chicken hen rooster duck goose swan owl eagle hawk pigeon penguin fish shark
    whale dolphin seal otter monkey ape gorilla chimpanzee bear panda lion tiger leopard
    cheetah wolf fox deer elephant giraffe zebra camel kangaroo rabbit bunny hamster mouse
    rat squirrel turtle tortoise frog snake lizard crocodile alligator insect bee butterfly
    spider animal pet creature
    doll puppet statue sculpture mannequin robot toy teddy poster painting portrait
    snowman scarecrow mask cartoon character
    car truck bus van bike bicycle motorcycle scooter boat ship train plane airplane
    helicopter drone ball
""".split())


def head_noun(word: str) -> str:
    return word.lower().replace("-", " ").split()[-1] if word.strip() else ""


def is_human(word: str) -> bool:
    """True only for a known person word."""
    return head_noun(word) in HUMAN_WORDS


def human_word(word: str) -> bool | None:
    """True: a person word; False: a known non-human word; None: unknown (try it)."""
    noun = head_noun(word)
    if noun in HUMAN_WORDS:
        return True
    return False if noun in NON_HUMAN_WORDS else None
