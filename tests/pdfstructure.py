"""Reading a tagged PDF's structure tree and content streams with pikepdf, for the PDF/UA tests:
the tree's elements, where each marked-content sequence (MCID) is drawn on its page, and the
reading-order rule the tests hold both PDFs to.

The reading-order rule (recursive, rows before columns): for any two elements that share a
parent and draw on the same page, the later one never lies wholly above the earlier one, and
when they sit side by side (their vertical extents overlap) the later one never lies wholly to
the left of the earlier one. Applied at every level of the tree, it makes the depth-first order
of a page's MCIDs the order a sighted reader takes: top to bottom, and left to right across a
row; content set in columns reads column by column only when each column is its own element
(as WeasyPrint tags CSS columns). Between the MCIDs inside one element only the first half
applies (line by line): WeasyPrint draws a contents line's dot leader right to left.

Positions: a text show counts as its glyph line (from 0.2 em below the baseline to 0.8 em
above, at its start point), a painted path by its points, an image by its placed unit square;
clipping paths paint nothing and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import pikepdf

PAINTS = {"S", "s", "f", "F", "f*", "B", "B*", "b", "b*"}
TEXT_SHOWS = {"Tj", "TJ", "'", '"'}
PATH_POINTS = {"m": 2, "l": 2, "c": 6, "v": 4, "y": 4, "re": 4}
NUMERIC = {"cm", "Tm", "Td", "TD", "TL", *PATH_POINTS}
TOLERANCE = 1.0  # points: rounding in the layout, not a layout decision


@dataclass
class Box:
    """A bounding box in page space with y growing downwards (top < bottom)."""

    left: float = float("inf")
    top: float = float("inf")
    right: float = float("-inf")
    bottom: float = float("-inf")

    def add(self, x: float, y: float) -> None:
        self.left, self.right = min(self.left, x), max(self.right, x)
        self.top, self.bottom = min(self.top, y), max(self.bottom, y)

    def union(self, other: "Box") -> None:
        if not other.empty:
            self.add(other.left, other.top)
            self.add(other.right, other.bottom)

    @property
    def empty(self) -> bool:
        return self.left == float("inf")


def reads_before(first: Box, then: Box, across: bool = True) -> str | None:
    """Why ``then`` cannot follow ``first`` in reading order (None when it can)."""
    if then.bottom < first.top - TOLERANCE:
        return "lies above"
    side_by_side = then.top < first.bottom - TOLERANCE and first.top < then.bottom - TOLERANCE
    if side_by_side and then.right < first.left - TOLERANCE and across:
        return "lies left of"
    return None


def _mul(a, b):
    """Matrix product a x b of PDF matrices [a b c d e f]."""
    return [a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3],
            a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3],
            a[4] * b[0] + a[5] * b[2] + b[4], a[4] * b[1] + a[5] * b[3] + b[5]]


def _apply(m, x, y):
    return x * m[0] + y * m[2] + m[4], x * m[1] + y * m[3] + m[5]


IDENTITY = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]


@dataclass
class PageMarks:
    """What one page's content stream draws: a box per MCID, and what is drawn unmarked."""

    boxes: dict[int, Box] = field(default_factory=dict)
    artifacts: dict[str, int] = field(default_factory=dict)  # what artifacts paint, counted
    pagination_text: int = 0  # text shows inside /Artifact <</Type /Pagination>>
    unmarked: list[str] = field(default_factory=list)
    nesting: list[str] = field(default_factory=list)  # artifacts in tagged content, or back


def page_marks(page: pikepdf.Page) -> PageMarks:
    """Walk the page's content stream, and the form XObjects it draws: the area each MCID
    draws (text by its glyph line box, paths and images by their points), in page space with
    y downwards."""
    height = float(page.mediabox[3])
    marks = PageMarks()
    ctm, stack = list(IDENTITY), []
    tm = tlm = list(IDENTITY)
    size, leading = 0.0, 0.0
    path: list[tuple[float, float]] = []  # the path being built, in page space
    marked: list[int | str | None] = []  # MCID, "artifact" or None per open BDC/BMC

    def owner():
        for mark in reversed(marked):
            if mark is not None:
                return mark
        return None

    def draw(what: str, points) -> None:
        mark = owner()
        if mark in ("artifact", "pagination"):
            marks.artifacts[what] = marks.artifacts.get(what, 0) + 1
            marks.pagination_text += mark == "pagination" and what == "text"
        elif mark is None:
            marks.unmarked.append(what)
        else:
            box = marks.boxes.setdefault(mark, Box())
            for x, y in points:
                box.add(x, height - y)

    def run(source, resources) -> None:
        """Walk one content stream; a form XObject it draws is walked where it is drawn."""
        nonlocal ctm, tm, tlm, size, leading, path
        for operands, op in pikepdf.parse_content_stream(source):
            name = str(op)
            nums = [float(o) for o in operands] if name in NUMERIC else []
            if name == "q":
                stack.append(ctm)
            elif name == "Q":
                ctm = stack.pop()
            elif name == "cm":
                ctm = _mul(nums, ctm)
            elif name == "BT":
                tm = tlm = list(IDENTITY)
            elif name == "Tm":
                tm = tlm = nums
            elif name in ("Td", "TD"):
                tm = tlm = _mul([1, 0, 0, 1, nums[0], nums[1]], tlm)
                if name == "TD":
                    leading = -nums[1]
            elif name == "TL":
                leading = nums[0]
            elif name == "T*":
                tm = tlm = _mul([1, 0, 0, 1, 0, -leading], tlm)
            elif name == "Tf":
                size = float(operands[1])
            elif name in TEXT_SHOWS:
                full = _mul(tm, ctm)
                draw("text", [_apply(full, 0, -0.2 * size), _apply(full, 0, 0.8 * size)])
            elif name in PATH_POINTS:
                pts = list(zip(nums[0::2], nums[1::2]))
                if name == "re":
                    x, y, w, h = nums
                    pts = [(x, y), (x + w, y + h)]
                path.extend(_apply(ctm, x, y) for x, y in pts)
            elif name in PAINTS:
                draw("path", path)
                path = []
            elif name == "n":  # a clipping path ends here: nothing is painted
                path = []
            elif name == "Do":
                draw("image", [_apply(ctm, x, y) for x in (0, 1) for y in (0, 1)])
                form = _form(resources, operands[0])
                if form is not None:
                    saved = ctm
                    ctm = _mul([float(v) for v in form.get("/Matrix", IDENTITY)], ctm)
                    run(form, form.get("/Resources", resources))
                    ctm = saved
            elif name in ("BMC", "BDC"):
                mark = _mark(operands)
                outer = owner()
                if mark is not None and outer is not None and (mark in KINDS) != (outer in KINDS):
                    marks.nesting.append(f"{mark} inside {outer}")
                marked.append(mark)
            elif name == "EMC":
                marked.pop()

    run(page, page.obj.get("/Resources", pikepdf.Dictionary()))
    return marks


KINDS = ("artifact", "pagination")


def _form(resources, name):
    """The form XObject ``name`` in ``resources`` (None for an image, or nothing)."""
    xobject = resources.get("/XObject", pikepdf.Dictionary()).get(name)
    return xobject if xobject is not None and xobject.get("/Subtype") == "/Form" else None


def _mark(operands) -> int | str | None:
    """What a BMC/BDC opens: an MCID, "artifact", "pagination" (a pagination artifact), or
    None (marked content that is neither)."""
    props = operands[1] if len(operands) > 1 else None
    props = props if isinstance(props, pikepdf.Dictionary) else pikepdf.Dictionary()
    if str(operands[0]) == "/Artifact":
        return "pagination" if props.get("/Type") == "/Pagination" else "artifact"
    mcid = props.get("/MCID")
    return None if mcid is None else int(mcid)


@dataclass
class Element:
    """One structure element: its type, attributes, children (elements or MCIDs) and page."""

    obj: pikepdf.Dictionary
    page: int | None
    kids: list["Element | tuple[int, int]"]  # child elements, or (page, MCID)
    annots: list[pikepdf.Dictionary]

    @property
    def tag(self) -> str:
        return str(self.obj.get("/S"))

    def walk(self):
        """This element and every element under it, depth first."""
        yield self
        for kid in self.kids:
            if isinstance(kid, Element):
                yield from kid.walk()

    def mcids(self):
        """(page, MCID) of every marked content under this element, depth first."""
        for kid in self.kids:
            if isinstance(kid, Element):
                yield from kid.mcids()
            else:
                yield kid


def structure(pdf: pikepdf.Pdf) -> Element:
    """The structure tree under /StructTreeRoot as Elements."""
    pages = {p.objgen: i for i, p in enumerate(pdf.pages)}

    def page_of(node, inherited):
        pg = node.get("/Pg")
        return pages[pg.objgen] if pg is not None else inherited

    def build(node: pikepdf.Dictionary, inherited: int | None) -> Element:
        page = page_of(node, inherited)
        element = Element(node, page, [], [])
        kids = node.get("/K")
        items = list(kids) if isinstance(kids, pikepdf.Array) else [] if kids is None else [kids]
        for kid in items:
            if isinstance(kid, int):
                element.kids.append((page, int(kid)))
            elif kid.get("/Type") == "/MCR":
                element.kids.append((page_of(kid, page), int(kid.MCID)))
            elif kid.get("/Type") == "/OBJR":
                element.annots.append(kid.Obj)
            else:
                element.kids.append(build(kid, page))
        return element

    return build(pdf.Root.StructTreeRoot, None)


def element_boxes(element: Element, marks: list[PageMarks]) -> dict[int, Box]:
    """The area ``element`` draws on each page (its MCIDs and link rectangles)."""
    boxes: dict[int, Box] = {}
    for page, mcid in element.mcids():
        found = marks[page].boxes.get(mcid)
        if found is not None:
            boxes.setdefault(page, Box()).union(found)
    return boxes


def order_problems(root: Element, marks: list[PageMarks]) -> list[str]:
    """Every pair of siblings (elements or MCIDs) that breaks the reading-order rule."""
    problems = []
    for element in root.walk():
        kids = []
        for kid in element.kids:
            if isinstance(kid, Element):
                kids.append((kid.tag, element_boxes(kid, marks)))
            else:
                page, mcid = kid
                found = marks[page].boxes.get(mcid)
                kids.append((f"MCID {mcid}", {page: found} if found else {}))
        for (tag_a, a), (tag_b, b) in combinations(kids, 2):
            for page in a.keys() & b.keys():
                why = reads_before(a[page], b[page], not tag_b.startswith("MCID"))
                if why:
                    problems.append(f"page {page + 1}: in {element.tag}, {tag_b} "
                                    f"{why} the earlier {tag_a} "
                                    f"({a[page]} vs "
                                    f"{b[page]})")
    return problems
