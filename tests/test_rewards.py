"Property tests for judo.rewards: for any completion every reward returns one finite float in its range, reads the tags and letters as before, and keeps its caches bounded."
import math, pickle, re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import judo.answers as A
import judo.rewards as R
from judo.answers import last_tag, paper_letter, strict_letter
from judo.rewards import (REWARD_RANGES, AccuracyReward, DomainReward, SegF1Reward, StructureReward, clear_reward_caches,
                          default_encoder_path, format_reward, reward_funcs)
from judo.pairing import true_cells_text

# ---------------------------------------------------------------- completions of every kind
_pieces = st.sampled_from(["<seg>", "</seg>", "<think>", "</think>", "<answer>", "</answer>", "None", "(1,1)",
                           "(16,16)", "(0,3)", "(2,2)-(2,9)", "-", ",", " , ", "A", "B", "C", "D", "E", "a", "A crack",
                           "The answer is ", ".", ":", "\n", " ", "(", ")", "99999999999999999999", "\x00", "é",
                           "<seg><think><answer>", "</answer></think></seg>", "\ud800", "\udfff", "\U0001F600", "٣"])
any_chars = st.one_of(st.characters(), st.characters(categories=["Cs"]))   # st.characters() alone never draws a lone surrogate
piece_texts = st.lists(_pieces, max_size=40).map("".join)
completion_texts = st.one_of(st.text(any_chars, max_size=300), piece_texts,
                             st.tuples(piece_texts, st.integers(20, 300)).map(lambda t: t[0] * t[1]),     # long: up to ~60 KB
                             st.integers(4301, 6000).map(lambda k: f"<seg> ({'9' * k},1) </seg><think>x</think><answer>A</answer>"))
def _parts(texts): return [{"type": "text", "text": t} for t in texts]
completions = st.one_of(
    completion_texts,
    completion_texts.map(lambda t: [{"role": "assistant", "content": t}]),                                # TRL conversational
    st.lists(completion_texts, min_size=1, max_size=3).map(lambda ts: [{"role": "assistant", "content": _parts(ts)}]),
    completion_texts.map(lambda t: [{"role": "user", "content": "q"},
                                    {"role": "assistant", "content": [{"type": "image"}, *_parts([t]), {"type": "text", "text": None}]}]),
    st.sampled_from([[], None, 3, [{"role": "assistant"}], [{"role": "assistant", "content": None}], {"content": "<answer>A</answer>"}]))
solutions = st.sampled_from(["A", "B", "C", "D", " A ", "a", ""])
gt_texts = st.sampled_from(["None", "(1,1)", "(2,2)-(2,9) , (3,3)", "(16,1)-(16,16)", None])
references = st.one_of(st.none(), st.just(""), st.text(any_chars, max_size=50), piece_texts)

def _check(values, name, k):
    lo, hi = REWARD_RANGES[name]
    assert isinstance(values, list) and len(values) == k
    for v in values:
        assert type(v) is float and math.isfinite(v) and lo - 1e-9 <= v <= hi + 1e-9, (name, v)

class _TokenizerEncoder:
    "The bundled encoder's real tokenizer (it refuses lone surrogates) and a bag of token ids in place of the network."
    def __init__(self):
        from transformers import AutoTokenizer
        self.tokenizer = AutoTokenizer.from_pretrained(default_encoder_path())
    def encode(self, texts, **kw):
        ids = self.tokenizer(list(texts), truncation=True, max_length=256)["input_ids"]
        out = np.full((len(texts), 64), 1e-6)
        for row, i in zip(out, ids): np.add.at(row, np.asarray(i) % 64, 1.0)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

class _HashEncoder:
    "A deterministic stand-in encoder (bag of character trigrams, unit norm)."
    def encode(self, texts, **kw):
        out = np.full((len(texts), 64), 1e-6)
        for i, t in enumerate(texts):
            for j in range(max(len(t) - 2, 0)): out[i, hash(t[j:j+3]) % 64] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)

@pytest.fixture(scope="module")
def every_reward():
    return [("accuracy", AccuracyReward()), ("accuracy", AccuracyReward("paper")), ("format", format_reward),
            ("structure", StructureReward()), ("structure", StructureReward("paper")), ("seg_f1", SegF1Reward()),
            ("seg_f1", SegF1Reward(seg_rule="paper")), ("domain", DomainReward(_TokenizerEncoder()))]

@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(completions, solutions, gt_texts, references), min_size=1, max_size=4))
def test_every_reward_on_any_completion(every_reward, rows):
    comps, sols, gts, refs = map(list, zip(*rows))
    cols = dict(solution=sols, gt_cells=gts, domain_gt=refs, prompts=[None] * len(comps))
    for name, f in every_reward: _check(f(comps, **cols), name, len(comps))

# ---------------------------------------------------------------- the same readings as the regexes they replaced
OLD_TAG_RE = {"think": re.compile(r"<think>(.*?)</think>", re.S), "answer": re.compile(r"<answer>(.*?)</answer>", re.S)}
OLD_SEG_RE = {"strict": re.compile(r"<seg>(.*?)</seg>", re.S), "paper": re.compile(r"<seg>(.*?)</seg>")}
OLD_FORMAT_RE = re.compile(r"<seg>.*?</seg>.*?<think>.*?</think>.*?<answer>.*?</answer>", re.S)
OLD_FULL_RE = re.compile(r"<seg>(.*?)</seg>\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>", re.S)

class _Recorder:
    "Remembers the texts it embeds."
    def __init__(self): self.seen = []
    def encode(self, texts, **kw): self.seen += texts; return np.ones((len(texts), 2)) / math.sqrt(2)

_tag_pieces = st.sampled_from(["<seg>", "</seg>", "<think>", "</think>", "<answer>", "</answer>", "<", "seg>", " ", "\n",
                               "\u2003", "x", "(1,1)", "None", "A", "B is"])
@settings(max_examples=1500, deadline=None)
@given(st.lists(_tag_pieces, max_size=24).map("".join))
def test_tags_are_read_as_the_regexes_read_them(text):
    for tag, rx in OLD_TAG_RE.items():
        found = rx.findall(text)
        assert last_tag(text, tag) == (found[-1].strip() if found else None)
    assert format_reward([text]) == [0.2 if OLD_FORMAT_RE.search(text) else 0.0]
    for rule, rx in OLD_SEG_RE.items():
        m, got = rx.search(text), SegF1Reward(seg_rule=rule).predicted(text)
        if m is None or (rule == "paper" and not m.group(1).strip()): want = np.zeros((16, 16), bool) if rule == "paper" else None
        else: want = R._predicted_cells(m.group(1), 16)
        assert (got is None and want is None) or np.array_equal(got, want)
    m, rec = OLD_FULL_RE.search(text), _Recorder()
    DomainReward(rec)([text], domain_gt=["ref"])
    assert rec.seen == ([] if m is None else ["ref", OLD_TAG_RE["think"].findall(text)[-1].strip()])

# the letter extractors as they were before they were made linear (and, strict, with the option verbs): the reference
_OLD_CAND_RE, _OLD_ARTICLE_RE = re.compile(r"(?<![A-Za-z0-9])([ABCDEFGH])(?![A-Za-z0-9])"), re.compile(r"\s+([a-z]+)")
def _old_strict_letter(text):
    text, found = text or "", []
    for m in _OLD_CAND_RE.finditer(text):
        w = _OLD_ARTICLE_RE.match(text, m.end())
        if m.group(1) == "A" and w and w.group(1) not in A._OPTION_VERBS and not A._cued(text, m.start()): continue
        found.append((m.start(), m.group(1)))
    if not found: return None
    if all(l == found[0][1] for _, l in found): return found[0][1]
    cued = [l for p, l in found if A._cued(text, p)]
    return cued[-1] if cued else found[-1][1]

def _old_paper_letter(text):
    if not text: return None
    text = re.sub(r"\s+", " ", text)
    if len(text) < 3:
        text = re.sub(r"[^\w\s]", "", text); return text[0] if text else None
    choices = re.findall(r"(?<![a-z])([A-D])(?![a-z])", text)
    if not choices: return None
    if len(choices) == 1: return choices[0]
    scores = {c: 0 for c in choices}
    for c in choices:
        pos = text.rfind(c); context = text[max(0, pos - 20):pos + 20]
        scores[c] += sum(k.upper() in context for k in A._PAPER_KEYWORDS)
        scores[c] += 2 * (pos > len(text) * 0.7) + (pos < len(text) - 1 and text[pos + 1] in "。.!！,，")
    return max(scores.items(), key=lambda x: x[1])[0]

_letter_pieces = st.sampled_from(["A", "B", "C", "D", "E", "H", "a", "b", " ", "  ", "\n", ".", ",", ":", "(", ")", "1", "。",
                                  "answer", "Answer is", "option", "is", "IS", "choose", "crack", "think", "correct", "right",
                                  " is", " fits", " and", " crack"])
@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.lists(_letter_pieces, max_size=30).map("".join), st.text(max_size=60)))
def test_letters_are_what_the_previous_extractors_found(text):
    assert strict_letter(text) == _old_strict_letter(text)
    assert paper_letter(text) == _old_paper_letter(text)

# ---------------------------------------------------------------- the real encoder
@pytest.fixture(scope="module")
def real_domain():
    return DomainReward(device="cpu")

@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(st.text(any_chars, max_size=200), piece_texts)
                .map(lambda t: "<seg>None</seg><think>" + t + "</think><answer>A</answer>"), min_size=1, max_size=4),
       st.text(any_chars, max_size=60))
def test_real_encoder_in_range(real_domain, comps, ref):
    _check(real_domain(comps, domain_gt=[ref] * len(comps)), "domain", len(comps))

def test_real_encoder_reads_lone_surrogates_as_replacement_characters(real_domain):
    ref = "A white dent breaks the capsule surface."
    comps = ["<seg>None</seg><think>a dent\ud800 on the capsule</think><answer>A</answer>",
             "<seg>None</seg><think>\udfff</think><answer>A</answer>", "<seg>None</seg><think>a dent</think><answer>A</answer>"]
    got = real_domain(comps, domain_gt=[ref, ref + "\ud83d", ref])
    fixed = lambda t: re.sub("[\ud800-\udfff]", "\ufffd", t)
    want = real_domain([fixed(c) for c in comps], domain_gt=[ref, fixed(ref + "\ud83d"), ref])
    _check(got, "domain", 3)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got[0] > 0.03

def test_real_encoder_batch_equals_single(real_domain):
    ref = "A white dent breaks the capsule surface."
    comps = [f"<seg>None</seg><think>{t}</think><answer>A</answer>" for t in ("a dent on the capsule", "sunny weather", "scratch")]
    batch = real_domain(comps, domain_gt=[ref] * 3)
    single = [real_domain([c], domain_gt=[ref])[0] for c in comps]
    np.testing.assert_allclose(batch, single, atol=1e-5)
    assert batch[0] > batch[1]

# ---------------------------------------------------------------- columns, caches, contract
def test_values_are_python_floats():
    comps = ["<seg> (1,1)-(1,2) </seg><think> x </think><answer>A</answer>"]
    for f in reward_funcs(["accuracy", "format", "structure", "seg_f1"]):
        assert [type(v) for v in f(comps, solution=["A"], gt_cells=["(1,2)"])] == [float]

def test_rewards_pickle_and_keep_their_names():
    for f in reward_funcs(letter_rule="paper", seg_rule="paper"):
        g = pickle.loads(pickle.dumps(f))
        assert g.__name__ == f.__name__ and g.__name__.endswith("_reward")

@pytest.mark.parametrize("name,column", [("accuracy", "solution"), ("structure", "solution"), ("seg_f1", "gt_cells"),
                                         ("domain", "domain_gt")])
def test_mismatched_columns_name_the_column_and_lengths(name, column):
    f = reward_funcs([name], encoder=_HashEncoder())[0]
    cols = dict(solution=["A"] * 3, gt_cells=["None"] * 3, domain_gt=["x"] * 3)
    cols[column] = cols[column][:2]
    with pytest.raises(ValueError, match=f"{f.__name__}: 3 completions but 2 {column} values"):
        f(["<seg>None</seg><think>x</think><answer>A</answer>"] * 3, **cols)

def test_long_texts_are_not_cached():
    clear_reward_caches()
    long = "<seg> None </seg><think> " + "a dent " * 20_000 + "</think><answer>A</answer>"   # 140 KB
    for f in reward_funcs(["accuracy", "format", "structure", "seg_f1"]): f([long], solution=["A"], gt_cells=["None"])
    assert R.last_tag.cache_info().currsize == 0 and R.think_letter.cache_info().currsize == 0
    short = "<seg> None </seg><think> a dent </think><answer>A</answer>"
    StructureReward()([short], solution=["A"])
    assert R.last_tag.cache_info().currsize == 2 and R.last_tag.cache_info().maxsize <= 1024

def test_reference_cache_is_bounded_and_cleared():
    r, comp = DomainReward(_HashEncoder(), max_refs=3), "<seg>None</seg><think>a dent</think><answer>A</answer>"
    r([comp] * 5, domain_gt=[f"reference {i}" for i in range(5)])
    assert list(r._refs) == ["reference 2", "reference 3", "reference 4"]                 # the oldest were dropped
    r([comp], domain_gt=["x" * 10_000])
    assert "x" * 10_000 not in r._refs                                                       # long references are not kept
    clear_reward_caches()
    assert r._refs == {}

def test_true_cells_text_rgb_and_any_size():
    m = np.zeros((100, 300, 3), np.uint8); m[:50, :150, 0] = 200
    assert true_cells_text(m) == " , ".join(f"({r},1)-({r},8)" for r in range(1, 9))
