"""A tiny random Mistral and its tokenizer, built offline, for tests and the benchmark.

`write_tiny_mistral(out_dir)` saves a 2-layer `MistralForCausalLM` (random weights) and a
byte-level BPE tokenizer trained with the `tokenizers` library on the prompt template, in
the hub's own format, so it loads through the same `from_pretrained` path as
Mistral-7B-Instruct. Its chat template follows Mistral's `[INST] ... [/INST]` layout.
`fit_tiny_mistral` fits it for a bounded number of steps on (caption, answer) pairs, rendered
exactly as the transformers backend renders them: the test that the whole path (prompt,
chat template, left-padded batched generate, parse, A.2 rules) returns what the model says.
Never use these for real outputs.
"""
from __future__ import annotations

from pathlib import Path

from curation.entities import prompt

SPECIALS = ("<unk>", "<s>", "</s>")
VOCAB_SIZE = 2048  # our choice: room for merges across words (the corpus saturates first)
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}[INST] {{ message['content'] }}[/INST]"
    "{% else %} {{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)
# A few ordinary captions so merges are not only the prompt's words.
_EXTRA_TEXT = (
    "A young boy plays the guitar in his bedroom.",
    "A chef chops vegetables on a wooden cutting board in a restaurant kitchen.",
    "A dog runs across a green field under a blue sky.",
    "Two men are playing chess in a park.",
    "A woman rides a bicycle along the beach at sunset.",
)


def _train_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Merges may cross spaces (so the fixed prompt costs few tokens, which keeps fitting fast)
    # but never the dict's punctuation: a random model cannot emit a well-formed answer by
    # sampling one token that happens to hold a whole few-shot answer.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"[{}'\"\n]"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=list(SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    corpus = [prompt.TEMPLATE, *(c for c, _ in prompt.EXAMPLES), *(o for _, o in prompt.EXAMPLES),
              *_EXTRA_TEXT]
    tok.train_from_iterator(corpus, trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", chat_template=CHAT_TEMPLATE)


def write_tiny_mistral(out_dir: str | Path, seed: int = 0) -> Path:
    """Save a tiny random MistralForCausalLM + BPE tokenizer to `out_dir`; returns it."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    config = MistralConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=2048,
        sliding_window=None, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = MistralForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# Three caption -> answer pairs that tests and the benchmark fit a tiny Mistral on; one answer
# in JSON, two in Figure 7's Python-dict style, so both parsers are exercised.
FIT_PAIRS = [
    ("A brown dog chases a red ball on the beach.",
     "{'background': ['beach'], 'subject': ['brown dog'], 'object': ['red ball']}"),
    ("A woman in a yellow raincoat walks through a park.",
     '{"background": ["park"], "subject": ["woman"], "object": ["yellow raincoat"]}'),
    ("A little girl hugs a teddy bear in her bedroom.",
     "{'background': ['bedroom'], 'subject': ['little girl'], 'object': ['teddy bear']}"),
]


def fit_tiny_mistral(model_dir: str | Path, pairs: list[tuple[str, str]], max_steps: int = 400,
                     lr: float = 3e-3, seed: int = 0) -> int:
    """Fit the checkpoint in `model_dir` (in place) until greedy decoding reproduces every
    answer of `pairs` under teacher forcing, or `max_steps`; returns the steps taken."""
    from model.model_registry import torch_threads

    with torch_threads(1):  # a 2-layer, 64-wide model: extra threads only add sync cost
        return _fit(model_dir, pairs, max_steps, lr, seed)


def _fit(model_dir, pairs, max_steps: int, lr: float, seed: int) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curation.entities.transformers_backend import render

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ids, labels = [], []
    for caption, answer in pairs:
        text, special = render(tok, caption)
        p = tok(text, add_special_tokens=special)["input_ids"]
        a = tok(" " + answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids.append(p + a)
        labels.append([-100] * len(p) + a)
    width = max(map(len, ids))
    pad = lambda rows, v: torch.tensor([r + [v] * (width - len(r)) for r in rows])  # noqa: E731
    input_ids, label_ids = pad(ids, tok.eos_token_id), pad(labels, -100)
    mask = pad([[1] * len(r) for r in ids], 0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    step, streak = 0, 0
    for step in range(1, max_steps + 1):
        loss = model(input_ids=input_ids, attention_mask=mask, labels=label_ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 5 == 0:
            with torch.no_grad():
                logits = model(input_ids=input_ids, attention_mask=mask).logits
            streak = streak + 1 if _memorised(logits, label_ids) else 0
            if streak == 2:  # twice in a row: not a lucky step
                break
    model.eval()
    model.save_pretrained(model_dir)
    return step


def _memorised(logits, labels) -> bool:
    """Every answer token is the argmax of the previous position (greedy reproduces it)."""
    pred = logits[:, :-1].argmax(-1)  # (B, T-1)
    target = labels[:, 1:]
    known = target != -100
    return bool((pred[known] == target[known]).all())
