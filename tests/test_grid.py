"Property tests for the grid codec (judo.grid): round trips, the parser's only failure mode, and the tag scanners against the regexes they replace."
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from judo.grid import (GridParseError, adjacent_blocks, blocks_in_order, cell_scores, cells_to_mask, decode_cells, encode_cells,
                       find_blocks, first_block, grid_edges, last_block, mask_to_cells)

@st.composite
def grids(draw, max_n=32):
    n = draw(st.integers(1, max_n))
    cells = draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=n * n))
    g = np.zeros((n, n), bool)
    for r, c in cells: g[r, c] = True
    return g

@settings(max_examples=300, deadline=None)
@given(grids())
def test_encode_decode_round_trip(g):
    text = encode_cells(g)
    np.testing.assert_array_equal(decode_cells(text, n=g.shape[0]), g)
    assert (text == "None") == (not g.any())

@settings(max_examples=100, deadline=None)
@given(grids(max_n=16), st.integers(0, 2))
def test_cells_mask_round_trip(g, extra):
    n = g.shape[0]; size = n * 3 + extra          # uneven cells when extra > 0
    np.testing.assert_array_equal(mask_to_cells(cells_to_mask(g, size), n=n), g)

@settings(max_examples=100, deadline=None)
@given(grids(max_n=16))
def test_shuffled_text_with_duplicates_decodes_the_same(g):
    items = encode_cells(g).split(" , ")
    if items == ["None"]: return
    rng = np.random.default_rng(len(items))
    text = " ;".join(rng.permutation(items + items[:1]))
    np.testing.assert_array_equal(decode_cells(text, n=g.shape[0]), g)

_seg_alphabet = st.sampled_from(list("()-,; 0123456789\n\tNnoe") + ["(1,2)", "-(", "None", "99"])
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.lists(_seg_alphabet, max_size=20).map("".join),
                 st.tuples(st.sampled_from("90"), st.integers(4000, 6000), st.sampled_from(["({},1)", "(1,1)-(1,{})", "({}"]))
                 .map(lambda t: t[2].format(t[0] * t[1] + "1"))), st.integers(1, 32))
def test_decode_raises_only_grid_parse_error(text, n):
    try: g = decode_cells(text, n=n)
    except GridParseError: return
    assert g.shape == (n, n) and g.dtype == bool

@pytest.mark.parametrize("bad", [None, 3, b"(1,1)"])
def test_decode_non_str_is_grid_parse_error(bad):
    with pytest.raises(GridParseError): decode_cells(bad)

@settings(max_examples=100, deadline=None)
@given(grids(max_n=16), grids(max_n=16))
def test_cell_scores_in_unit_range(a, b):
    if a.shape != b.shape: return
    s = cell_scores(a, b)
    assert all(0.0 <= v <= 1.0 for v in s.values())
    assert (s["f1"] == 1.0) == (a == b).all()

def test_mask_to_cells_matches_loop_on_random_masks():
    rng = np.random.default_rng(1)
    for _ in range(60):
        h, w, n = rng.integers(1, 200), rng.integers(1, 200), int(rng.integers(1, 33))
        m = rng.random((h, w)) < rng.random()
        thr = float(rng.choice([0.0, 0.02, 0.1, 1 / 3, 0.5, 1.0]))
        rows, cols = grid_edges(h, n), grid_edges(w, n)
        ref = np.array([[m[rows[r]:rows[r+1], cols[c]:cols[c+1]].size > 0 and
                         m[rows[r]:rows[r+1], cols[c]:cols[c+1]].mean() >= thr for c in range(n)] for r in range(n)])
        np.testing.assert_array_equal(mask_to_cells(m, n=n, thresh=thr), ref)

def test_tall_cells_use_the_wide_counter():
    m = np.ones((2000, 16), bool)                 # cells 1000 px tall: too tall for the uint8 counters
    assert mask_to_cells(m, n=2).all()
    m[:, :] = False; m[:19, :8] = True            # 19*8 = 152 px of 8000 -> 1.9% < 2%
    assert not mask_to_cells(m, n=2).any() and mask_to_cells(m, n=2, fallback=True)[0, 0]

def test_overlong_cell_numbers_are_out_of_range():
    for text in [f"({'9' * 5000},1)", f"(1,{'1' * 4301})", f"(1,1)-(1,{'2' * 100_000})", f"(1,{'7' * 10})"]:
        with pytest.raises(GridParseError, match="out of range"): decode_cells(text)
    assert decode_cells(f"({'0' * 5000}1,{'0' * 9}2)")[0, 1]                   # leading zeros do not count

# ---------------------------------------------------------------- tag scanners = the regexes they replace
TAGS = [("<seg>", "</seg>"), ("<think>", "</think>"), ("<answer>", "</answer>")]
FORMAT_RE = re.compile(r"<seg>.*?</seg>.*?<think>.*?</think>.*?<answer>.*?</answer>", re.S)    # judo.rewards' format check
FULL_RE = re.compile(r"<seg>(.*?)</seg>\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>", re.S)  # its domain-reward gate

def _blocks_re(o, c, flags=re.S, tail=""):
    return re.compile(re.escape(o) + "(.*?)" + (f"(?:{re.escape(c)}{tail})" if tail else re.escape(c)), flags)

def _check_blocks(t, o, c):
    assert list(find_blocks(t, o, c)) == [m.span(1) for m in _blocks_re(o, c).finditer(t)]
    assert list(find_blocks(t, o, c, one_line=True)) == [m.span(1) for m in _blocks_re(o, c, 0).finditer(t)]
    assert list(find_blocks(t, o, c, unclosed=True)) == [m.span(1) for m in _blocks_re(o, c, re.S, r"|\Z").finditer(t)]
    for one_line, flags in ((False, re.S), (True, 0)):
        m = _blocks_re(o, c, flags).search(t)
        assert first_block(t, o, c, one_line) == (m.group(1) if m else None)
    found = _blocks_re(o, c).findall(t)
    assert last_block(t, o, c) == (found[-1] if found else None)

_tag_pieces = st.sampled_from([t for pair in TAGS for t in pair] + ["<", ">", "/", "seg>", "<se", "x", " ", "\n", "\t", "\u2003", "\x1c"])
@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.lists(_tag_pieces, max_size=30).map("".join), st.text(max_size=30)))
def test_scanners_match_the_regexes_on_tag_texts(t):
    for o, c in TAGS: _check_blocks(t, o, c)
    assert blocks_in_order(t, TAGS) == (FORMAT_RE.search(t) is not None)
    m = FULL_RE.search(t)
    assert adjacent_blocks(t, TAGS) == (m.groups() if m else None)

_short_tags = st.text("ab<", min_size=1, max_size=3)      # overlapping and self-overlapping tags too
@settings(max_examples=1500, deadline=None)
@given(st.text("ab< \n", max_size=25), _short_tags, _short_tags, _short_tags, _short_tags)
def test_scanners_match_the_regexes_for_any_tags(t, o1, c1, o2, c2):
    _check_blocks(t, o1, c1)
    e = re.escape
    assert blocks_in_order(t, [(o1, c1), (o2, c2)]) == bool(re.search(f"{e(o1)}.*?{e(c1)}.*?{e(o2)}.*?{e(c2)}", t, re.S))
    m = re.search(f"{e(o1)}(.*?){e(c1)}\\s*{e(o2)}(.*?){e(c2)}", t, re.S)
    assert adjacent_blocks(t, [(o1, c1), (o2, c2)]) == (m.groups() if m else None)

def test_scanners_reject_empty_tags():
    with pytest.raises(ValueError, match="must not be empty"): list(find_blocks("x", "", "</seg>"))
    with pytest.raises(ValueError, match="cannot be combined"): list(find_blocks("x", "<a>", "</a>", one_line=True, unclosed=True))
