"Property tests for judo.rewards: for any completion every reward returns one finite float in its documented range."
import math, pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from judo.rewards import (REWARD_RANGES, AccuracyReward, DomainReward, SegF1Reward, StructureReward, format_reward,
                          reward_funcs, true_cells_text)

_pieces = st.sampled_from(["<seg>", "</seg>", "<think>", "</think>", "<answer>", "</answer>", "None", "(1,1)",
                           "(16,16)", "(0,3)", "(2,2)-(2,9)", "-", ",", " , ", "A", "B", "C", "D", "E", "a", "A crack",
                           "The answer is ", ".", ":", "\n", " ", "(", ")", "99999999999999999999", "\x00", "é"])
completion_texts = st.one_of(st.text(max_size=300), st.lists(_pieces, max_size=40).map("".join))
completions = st.one_of(completion_texts, completion_texts.map(lambda t: [{"role": "assistant", "content": t}]),
                        completion_texts.map(lambda t: [{"role": "assistant", "content": [{"type": "text", "text": t}]}]),
                        st.just([]), st.none())
solutions = st.sampled_from(["A", "B", "C", "D", " A ", "a", ""])
gt_texts = st.sampled_from(["None", "(1,1)", "(2,2)-(2,9) , (3,3)", "(16,1)-(16,16)"])

def _check(values, name, k):
    lo, hi = REWARD_RANGES[name]
    assert isinstance(values, list) and len(values) == k
    for v in values:
        assert type(v) is float and math.isfinite(v) and lo - 1e-9 <= v <= hi + 1e-9, (name, v)

@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(completions, solutions, gt_texts), min_size=1, max_size=4))
@pytest.mark.parametrize("rule", ["strict", "paper"])
def test_cheap_rewards_are_finite_and_in_range(rule, rows):
    comps, sols, gts = map(list, zip(*rows))
    cols = dict(solution=sols, gt_cells=gts, domain_gt=["x"] * len(comps), prompts=[None] * len(comps))
    _check(AccuracyReward(rule)(comps, **cols), "accuracy", len(comps))
    _check(format_reward(comps, **cols), "format", len(comps))
    _check(StructureReward(rule)(comps, **cols), "structure", len(comps))
    _check(SegF1Reward(seg_rule=rule)(comps, **cols), "seg_f1", len(comps))

class _HashEncoder:
    "A deterministic stand-in encoder (bag of character trigrams, unit norm), so the property test runs fast."
    def encode(self, texts, **kw):
        out = np.zeros((len(texts), 64))
        for i, t in enumerate(texts):
            for j in range(max(len(t) - 2, 0)): out[i, hash(t[j:j+3]) % 64] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(completions, st.one_of(st.none(), st.text(max_size=50))), min_size=1, max_size=5))
def test_domain_reward_is_finite_and_in_range(rows):
    comps, refs = map(list, zip(*rows))
    _check(DomainReward(_HashEncoder())(comps, domain_gt=refs), "domain", len(comps))

@pytest.fixture(scope="module")
def real_domain():
    return DomainReward(device="cpu")

@settings(max_examples=25, deadline=None)
@given(st.lists(completion_texts.map(lambda t: "<seg>None</seg><think>" + t + "</think><answer>A</answer>"), min_size=1, max_size=4),
       st.text(max_size=60))
def test_real_encoder_in_range(real_domain, comps, ref):
    _check(real_domain(comps, domain_gt=[ref] * len(comps)), "domain", len(comps))

def test_real_encoder_batch_equals_single(real_domain):
    ref = "A white dent breaks the capsule surface."
    comps = [f"<seg>None</seg><think>{t}</think><answer>A</answer>" for t in ("a dent on the capsule", "sunny weather", "scratch")]
    batch = real_domain(comps, domain_gt=[ref] * 3)
    single = [real_domain([c], domain_gt=[ref])[0] for c in comps]
    np.testing.assert_allclose(batch, single, atol=1e-5)
    assert batch[0] > batch[1]

def test_values_are_python_floats():
    comps = ["<seg> (1,1)-(1,2) </seg><think> x </think><answer>A</answer>"]
    for f in reward_funcs(["accuracy", "format", "structure", "seg_f1"]):
        assert [type(v) for v in f(comps, solution=["A"], gt_cells=["(1,2)"])] == [float]

def test_rewards_pickle_and_keep_their_names():
    for f in reward_funcs(letter_rule="paper", seg_rule="paper"):
        g = pickle.loads(pickle.dumps(f))
        assert g.__name__ == f.__name__ and g.__name__.endswith("_reward")

def test_mismatched_columns_fail_loudly():
    with pytest.raises(ValueError):
        AccuracyReward()(["<answer>A</answer>"] * 2, solution=["A"])

def test_true_cells_text_rgb_and_any_size():
    m = np.zeros((100, 300, 3), np.uint8); m[:50, :150, 0] = 200
    assert true_cells_text(m) == " , ".join(f"({r},1)-({r},8)" for r in range(1, 9))
