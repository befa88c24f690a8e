"""Text layout: from a string and a box to positioned runs, the same for both painters.

Steps: split into grapheme clusters, give each cluster the first face in the fallback chain that
has its glyphs (colour emoji go to the emoji face), resolve bidi levels, break into lines at
spaces and between CJK characters, choose the size (``shrink``), cut with an ellipsis
(``truncate``) or let it run (``overflow``), then reorder each line visually and place its runs.
Shaping itself (Arabic joining, Devanagari conjuncts, ligatures, emoji ZWJ sequences) is done by
HarfBuzz through Pillow's raqm layout when a run is measured or drawn.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .fonts import EMOJI_FACE, coverage, load_font, metrics
from .scene import FontFace, Run

ELLIPSIS = "…"
_IGNORABLE = {0x200C, 0x200D, 0xFE0E, 0xFE0F, 0x20E3}
_NO_BREAK_BEFORE = set("、。，．・：；？！ー」』）】〕〉》”’),.!?:;%")
_NO_BREAK_AFTER = set("「『（【〔〈《“‘(")
_NO_BREAK_SPACES = set("\u00a0\u202f\u2007\u2060")  # e.g. Babel's "44,10\u00a0€"


def _is_break_space(ch: str) -> bool:
    return ch.isspace() and ch not in _NO_BREAK_SPACES


def clean(text: str) -> str:
    """Tabs become spaces and other control characters go: fonts have no glyphs for them."""
    text = text.replace("\r\n", "\n").replace("\t", " ")
    return "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch) != "Cc")


@dataclass(frozen=True)
class TextBox:
    width: float
    height: float
    size: float
    min_size: float
    fit: str = "shrink"  # shrink | truncate | overflow
    max_lines: int | None = None
    line_height: float = 1.2
    letter_spacing: float = 0.0
    align: str = "left"
    valign: str = "top"


@dataclass(frozen=True)
class LaidOut:
    runs: tuple[Run, ...]
    lines: tuple[str, ...]
    size: float
    ascent: float
    fits: bool  # False when even min_size did not fit and the text was cut


@dataclass(frozen=True)
class _Piece:
    """One cluster with its face and bidi level."""

    text: str
    face: FontFace
    level: int


# ---------------------------------------------------------------- clusters and faces

def clusters(text: str) -> list[str]:
    """Grapheme-like clusters: a base character with its marks, joiners and modifiers."""
    out: list[str] = []
    for ch in text:
        if out and _extends(out[-1], ch):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _is_regional(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def _extends(prev: str, ch: str) -> bool:
    cp = ord(ch)
    if unicodedata.category(ch) in ("Mn", "Mc", "Me") or cp in _IGNORABLE:
        return True
    if 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F:  # skin tones, flag tags
        return True
    if prev[-1] == "\u200d":  # ZWJ sequence
        return True
    if prev[-1] == "\u094d" and unicodedata.category(ch) == "Lo":  # Devanagari conjunct
        return True
    return _is_regional(cp) and len(prev) == 1 and _is_regional(ord(prev))


def is_emoji(cluster: str) -> bool:
    base = ord(cluster[0])
    return (0x1F000 <= base <= 0x1FAFF and not 0x1F100 <= base <= 0x1F1E5) or \
        "\ufe0f" in cluster or "\u20e3" in cluster


def _face_for(cluster: str, chain: tuple[FontFace, ...], previous: FontFace | None) -> FontFace:
    if is_emoji(cluster) and EMOJI_FACE in chain and ord(cluster[0]) in coverage(EMOJI_FACE):
        return EMOJI_FACE
    needed = [ord(c) for c in cluster if ord(c) not in _IGNORABLE]
    # Spaces and punctuation stay in the neighbouring run's face, so runs do not fragment.
    if previous is not None and previous != EMOJI_FACE and not cluster[0].isalpha() \
            and all(cp in coverage(previous) for cp in needed):
        return previous
    for face in chain:
        if face == EMOJI_FACE:
            continue
        if all(cp in coverage(face) for cp in needed):
            return face
    return chain[0]


# ---------------------------------------------------------------- bidi

def bidi_levels(text: str) -> tuple[int, list[int]]:
    """A compact Unicode bidi resolution (UAX #9 rules P2-P3, W1-W7, N1-N2, I1-I2) without
    explicit embeddings, which card text does not use. Returns (base level, level per char)."""
    types = [unicodedata.bidirectional(ch) or "L" for ch in text]
    base = next((0 if t == "L" else 1 for t in types if t in ("L", "R", "AL")), 0)
    types = _resolve_weak(types, base)
    types = _resolve_neutral(types, base)
    return base, [_implicit_level(t, base) for t in types]


def _resolve_weak(types: list[str], base: int) -> list[str]:
    out, last_strong, prev = [], "R" if base else "L", "ON"
    for t in types:  # W1-W3
        if t == "NSM":
            t = prev
        if t in ("L", "R", "AL"):
            last_strong = t
        if t == "EN" and last_strong == "AL":
            t = "AN"
        out.append("R" if t == "AL" else t)
        prev = t
    _separators_and_terminators(out)
    last_strong = "R" if base else "L"
    for i, t in enumerate(out):  # W7: numbers after L text read as L
        if t in ("L", "R"):
            last_strong = t
        elif t == "EN" and last_strong == "L":
            out[i] = "L"
    return out


def _separators_and_terminators(types: list[str]) -> None:
    """W4-W6: ``1,000`` and ``25%`` / ``$49`` stay one number; other separators are neutral."""
    for i in range(1, len(types) - 1):  # W4
        before, here, after = types[i - 1], types[i], types[i + 1]
        if before == after == "EN" and here in ("ES", "CS"):
            types[i] = "EN"
        elif before == after == "AN" and here == "CS":
            types[i] = "AN"
    for i, t in enumerate(types):  # W5
        if t == "ET" and _next_to_number(types, i):
            types[i] = "EN"
    for i, t in enumerate(types):  # W6
        if t in ("ET", "ES", "CS"):
            types[i] = "ON"


def _next_to_number(types: list[str], i: int) -> bool:
    for step in (-1, 1):
        j = i + step
        while 0 <= j < len(types) and types[j] == "ET":
            j += step
        if 0 <= j < len(types) and types[j] == "EN":
            return True
    return False


def _resolve_neutral(types: list[str], base: int) -> list[str]:
    strong = ["R" if t in ("EN", "AN") else t for t in types]
    out = list(types)
    i = 0
    while i < len(types):
        if strong[i] in ("L", "R"):
            i += 1
            continue
        j = i
        while j < len(types) and strong[j] not in ("L", "R"):
            j += 1
        before = strong[i - 1] if i > 0 else ("R" if base else "L")
        after = strong[j] if j < len(types) else ("R" if base else "L")
        fill = before if before == after else ("R" if base else "L")
        out[i:j] = [fill] * (j - i)
        i = j
    return out


def _implicit_level(t: str, base: int) -> int:
    if base == 0:
        return {"L": 0, "R": 1}.get(t, 2)
    return {"L": 2, "R": 1}.get(t, 2)


def visual_order(levels: list[int]) -> list[int]:
    """Rule L2: indices in display order."""
    order = list(range(len(levels)))
    if not levels:
        return order
    top, lowest_odd = max(levels), min((lv for lv in levels if lv % 2), default=None)
    if lowest_odd is None:
        return order
    for level in range(top, lowest_odd - 1, -1):
        i = 0
        while i < len(order):
            if levels[order[i]] >= level:
                j = i
                while j < len(order) and levels[order[j]] >= level:
                    j += 1
                order[i:j] = reversed(order[i:j])
                i = j
            else:
                i += 1
    return order


# ---------------------------------------------------------------- measuring

@lru_cache(maxsize=65536)
def measure(text: str, face: FontFace, size: float, rtl: bool, spacing: float) -> float:
    """Advance width of ``text`` in one face at ``size`` px, letter spacing included."""
    font = load_font(face, size)
    width = font.getlength(text, direction="rtl" if rtl else "ltr")
    if face.bitmap_size:
        width *= size / face.bitmap_size
    return width + effective_spacing(text, spacing) * len(clusters(text))


def effective_spacing(text: str, spacing: float) -> float:
    """No letter spacing in cursive scripts (Arabic): it would tear the joined letters apart."""
    if spacing and any(unicodedata.bidirectional(ch) == "AL" for ch in text):
        return 0.0
    return spacing


def _segments(pieces: list[_Piece]) -> list[list[_Piece]]:
    """Split pieces where the face or the level changes."""
    groups: list[list[_Piece]] = []
    for piece in pieces:
        if groups and groups[-1][0].face == piece.face and groups[-1][0].level == piece.level:
            groups[-1].append(piece)
        else:
            groups.append([piece])
    return groups


REFERENCE_SIZE = 100.0


def _width(pieces: list[_Piece], size: float, spacing: float, exact: bool = True) -> float:
    """Exact advance at ``size``, or (``exact=False``) one scaled from a reference size: the
    shrink search tries many sizes and advances scale almost linearly, so only the size it
    settles on is measured exactly."""
    if exact:
        return sum(measure("".join(p.text for p in g), g[0].face, size, g[0].level % 2 == 1,
                           spacing) for g in _segments(pieces))
    ratio = size / REFERENCE_SIZE
    total = 0.0
    for group in _segments(pieces):
        text = "".join(p.text for p in group)
        total += measure(text, group[0].face, REFERENCE_SIZE, group[0].level % 2 == 1, 0.0) * \
            ratio + effective_spacing(text, spacing) * len(group)
    return total


# ---------------------------------------------------------------- line breaking

def _tokens(pieces: list[_Piece]) -> list[list[_Piece]]:
    """Unbreakable units: words with their trailing spaces, single CJK characters."""
    tokens: list[list[_Piece]] = []
    current: list[_Piece] = []
    for i, piece in enumerate(pieces):
        current.append(piece)
        nxt = pieces[i + 1].text if i + 1 < len(pieces) else None
        if nxt is not None and _break_after(piece.text, nxt):
            tokens.append(current)
            current = []
    if current:
        tokens.append(current)
    return tokens


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F") and not is_emoji(ch)


def _break_after(text: str, nxt: str) -> bool:
    if nxt[0] in _NO_BREAK_BEFORE or text[-1] in _NO_BREAK_AFTER:
        return False
    if _is_break_space(text[-1]):
        return not _is_break_space(nxt[0])
    if text[-1] == "-" and nxt[0].isalnum():
        return True
    return _is_wide(text[-1]) or _is_wide(nxt[0])


def _strip_trailing(line: list[_Piece]) -> list[_Piece]:
    end = len(line)
    while end and _is_break_space(line[end - 1].text[0]):
        end -= 1
    return line[:end]


def _break_lines(paragraphs: list[list[_Piece]], size: float, box: TextBox,
                 allow_split: bool, exact: bool = True) -> list[list[_Piece]] | None:
    """Greedy line filling; None when a word is wider than the box and splitting is off."""
    lines: list[list[_Piece]] = []
    for pieces in paragraphs:
        line: list[_Piece] = []
        width = 0.0
        for token in _tokens(pieces):
            token_w = _width(token, size, box.letter_spacing, exact)
            bare_w = _width(_strip_trailing(token), size, box.letter_spacing, exact)
            if line and width + bare_w > box.width + 0.01:
                lines.append(line)
                line, width = [], 0.0
            if not line and bare_w > box.width + 0.01:
                if not allow_split:
                    return None
                head, line, width = _split_token(token, size, box)
                lines.extend(head)
                continue
            line.extend(token)
            width += token_w
        lines.append(line)
    return lines


def _split_token(token: list[_Piece], size: float, box: TextBox):
    """A word wider than the box is cut between clusters (CSS overflow-wrap: anywhere)."""
    lines, line = [], []
    for piece in token:
        if line and _width(line + [piece], size, box.letter_spacing) > box.width + 0.01:
            lines.append(line)
            line = []
        line.append(piece)
    return lines, line, _width(line, size, box.letter_spacing)


# ---------------------------------------------------------------- fitting

def _fits(lines: list[list[_Piece]] | None, size: float, box: TextBox) -> bool:
    if lines is None:
        return False
    if box.max_lines is not None and len(lines) > box.max_lines:
        return False
    return len(lines) * size * box.line_height <= box.height + 0.01


def _shrink(paragraphs, box: TextBox) -> tuple[float, list[list[_Piece]], bool]:
    """Largest size from ``size`` down to ``min_size`` (in 0.5 px steps) that fits."""
    def attempt(size: float, exact: bool):
        lines = _break_lines(paragraphs, size, box, allow_split=False, exact=exact)
        return lines if _fits(lines, size, box) else None

    size = _estimate_size(attempt, box)
    while size >= box.min_size:  # the estimate is checked exactly; rarely more than one step
        lines = attempt(size, True)
        if lines is not None:
            return _grow(attempt, size, lines, box)
        size -= 0.5
    size = box.min_size
    return size, _break_lines(paragraphs, size, box, allow_split=True), False


def _grow(attempt, size: float, lines, box: TextBox):
    """The estimate may err low by a step: take half-pixel steps up while it still fits."""
    while size + 0.5 <= box.size:
        bigger = attempt(size + 0.5, True)
        if bigger is None:
            break
        size, lines = size + 0.5, bigger
    return size, lines, True


def _estimate_size(attempt, box: TextBox) -> float:
    if attempt(box.size, False) is not None:
        return box.size
    lo, hi = box.min_size, box.size  # invariant: hi does not fit
    if attempt(lo, False) is None:
        return lo
    while hi - lo > 0.5:
        mid = round((lo + hi) / 2 * 2) / 2
        if mid in (lo, hi):
            break
        if attempt(mid, False) is not None:
            lo = mid
        else:
            hi = mid
    return lo


def _truncate(lines: list[list[_Piece]], size: float, box: TextBox, primary: FontFace):
    """Keep what fits (max_lines, box height); end the last kept line with an ellipsis."""
    room = max(1, int((box.height + 0.01) // (size * box.line_height)))
    keep = min(room, box.max_lines or room)
    if len(lines) <= keep:
        return lines, True
    kept = [list(line) for line in lines[:keep]]
    last = _strip_trailing(kept[-1])
    face = primary if ord(ELLIPSIS) in coverage(primary) else last[-1].face if last else primary
    mark = _Piece(ELLIPSIS, face, last[-1].level if last else 0)
    while last and _width(last + [mark], size, box.letter_spacing) > box.width + 0.01:
        last = _strip_trailing(last[:-1])
    kept[-1] = last + [mark]
    return kept, False


# ---------------------------------------------------------------- the whole layout

def _pieces(text: str, chain: tuple[FontFace, ...]) -> list[list[_Piece]]:
    paragraphs = []
    for para in clean(text).split("\n"):
        _, levels = bidi_levels(para)
        pieces, pos, previous = [], 0, None
        for cluster in clusters(para):
            face = _face_for(cluster, chain, previous)
            pieces.append(_Piece(cluster, face, levels[pos]))
            pos += len(cluster)
            previous = face
        paragraphs.append(pieces)
    return paragraphs


@lru_cache(maxsize=4096)
def layout_text(text: str, chain: tuple[FontFace, ...], box: TextBox) -> LaidOut:
    """Lay ``text`` out in ``box`` with the faces of ``chain`` (primary first)."""
    paragraphs = _pieces(text, chain)
    fits = True
    if box.fit == "shrink":
        size, lines, fits = _shrink(paragraphs, box)
        if not fits:
            lines, _ = _truncate(lines, size, box, chain[0])
    else:
        size = box.size
        lines = _break_lines(paragraphs, size, box, allow_split=True)
        if box.fit == "truncate":
            lines, fits = _truncate(lines, size, box, chain[0])
    return _place(lines, size, box, chain[0], fits)


def _place(lines: list[list[_Piece]], size: float, box: TextBox, primary: FontFace,
           fits: bool) -> LaidOut:
    ascent, descent = metrics(primary, size)
    line_px = size * box.line_height
    total = line_px * len(lines)
    top = {"top": 0.0, "middle": (box.height - total) / 2, "bottom": box.height - total}[
        box.valign]
    runs: list[Run] = []
    texts = []
    for number, line in enumerate(lines):
        line = _strip_trailing(line)
        texts.append("".join(p.text for p in line))
        baseline = top + number * line_px + (line_px - ascent - descent) / 2 + ascent
        runs.extend(_place_line(line, size, baseline, box))
    return LaidOut(tuple(runs), tuple(texts), size, ascent, fits)


def _place_line(line: list[_Piece], size: float, baseline: float, box: TextBox) -> list[Run]:
    groups = _segments(line)
    order = visual_order([g[0].level for g in groups])
    widths = [_width(g, size, box.letter_spacing) for g in groups]
    total = sum(widths)
    x = {"left": 0.0, "center": (box.width - total) / 2, "right": box.width - total}[box.align]
    runs = []
    for index in order:
        group = groups[index]
        face = group[0].face
        text = "".join(p.text for p in group)
        runs.append(Run(
            text=text, face=face, size=size, x=x, baseline=baseline,
            width=widths[index], direction="rtl" if group[0].level % 2 else "ltr",
            letter_spacing=effective_spacing(text, box.letter_spacing),
            emoji=face.bitmap_size is not None,
        ))
        x += widths[index]
    return runs


def apply_transform(text: str, transform: str) -> str:
    if transform == "upper":
        return text.upper()
    if transform == "lower":
        return text.lower()
    if transform == "capitalize":
        return _capitalize(text)
    return text


def _capitalize(text: str) -> str:
    """CSS ``capitalize``: the first letter of each word, whatever precedes it ("(quoted)"),
    the rest untouched; apostrophes stay inside words ("don't")."""
    out, at_start = [], True
    for ch in text:
        if ch.isalnum():
            out.append(ch.upper() if at_start else ch)
            at_start = False
        else:
            out.append(ch)
            if ch not in "'’":
                at_start = True
    return "".join(out)
