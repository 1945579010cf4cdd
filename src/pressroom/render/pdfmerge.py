"""Putting the handout back together when its exercise cards are drawn apart (pikepdf).

The handout is laid out with a one-page stand-in ("stub") for every card, while the cards are
laid out and drawn as a document of their own, one card a page, in another process. Each stub
page then takes its card page's content, links and structure elements:

- the stub page object stays, so the contents, the outline and every link that points at it
  stay valid; its own drawing (running head and page number, marked as pagination artifacts)
  becomes a form XObject drawn under the card's content;
- the card's top-level structure elements replace the stub's in the document's structure
  tree, in place; the page's ParentTree entry becomes the card page's, and each link
  annotation gets a new ParentTree key;
- named destinations and outline entries on a stub page take the card page's positions.

Both documents come from the same WeasyPrint, theme and paper, so the result is the PDF the
whole handout would have been, with one subset of each font per document.
"""

from __future__ import annotations

import io
from typing import Any

# The stub page's own drawing, as a form XObject in the merged page's resources.
MARGINS_XOBJECT = "/PressroomStubPage"


class MergeError(Exception):
    """The two documents do not fit together (the caller renders the handout whole)."""


def merge_cards(book: bytes, cards: bytes, stubs: list[int]) -> bytes:
    """``book`` with page ``stubs[i]`` (0-based) replaced by page ``i`` of ``cards``; two
    documents that do not fit together (or are not PDFs) are a MergeError."""
    import pikepdf

    try:
        return _merge(book, cards, stubs)
    except (pikepdf.PdfError, KeyError, AttributeError, IndexError, TypeError,
            ValueError) as exc:
        raise MergeError(f"{type(exc).__name__}: {exc}") from None


def _merge(book: bytes, cards: bytes, stubs: list[int]) -> bytes:
    import pikepdf

    with pikepdf.open(io.BytesIO(book)) as pdf, pikepdf.open(io.BytesIO(cards)) as src:
        if len(src.pages) != len(stubs):
            raise MergeError(f"{len(src.pages)} card pages for {len(stubs)} cards")
        card_names = _card_names(src)
        parts = src.make_indirect(pikepdf.Array([_detach(src, j) for j in range(len(stubs))]))
        copied = pdf.copy_foreign(parts)
        root = pdf.Root.StructTreeRoot
        nums = _nums(root.ParentTree)
        document = root.K[0] if isinstance(root.K, pikepdf.Array) else root.K
        next_key = max(nums) + 1 if nums else 0
        for j, page_index in enumerate(stubs):
            page = pdf.pages[page_index]
            next_key = _graft(pdf, page, copied[j], document, nums, next_key)
        root.ParentTree = pdf.make_indirect(pikepdf.Dictionary(
            Nums=pikepdf.Array([x for key in sorted(nums) for x in (key, nums[key])])))
        root.ParentTreeNextKey = next_key
        pages = {j: pdf.pages[p].obj for j, p in enumerate(stubs)}
        _move_names(pdf, card_names, pages)
        _move_outline(pdf, src, pages, stubs)
        out = io.BytesIO()
        pdf.save(out, deterministic_id=True,
                 object_stream_mode=pikepdf.ObjectStreamMode.generate)
        return out.getvalue()


def _nums(tree: Any) -> dict[int, Any]:
    """A ParentTree's flat /Nums as {key: value} (WeasyPrint writes one flat array)."""
    if "/Kids" in tree:
        raise MergeError("a ParentTree with /Kids")
    items = list(tree.Nums)
    return {int(items[i]): items[i + 1] for i in range(0, len(items), 2)}


def _detach(src: Any, j: int) -> Any:
    """Page ``j`` of the cards document as one array to copy across: [resources, contents,
    annotations, top-level structure elements, the page's ParentTree entry, each annotation's
    Link element]. Page references inside its structure become the page's index (so that
    copying drags no page of ``src`` along); the top elements lose their parent."""
    import pikepdf

    page = src.pages[j].obj
    root = src.Root.StructTreeRoot
    nums = _nums(root.ParentTree)
    document = root.K[0] if isinstance(root.K, pikepdf.Array) else root.K
    tops = [e for e in document.K if _same(e.get("/Pg"), page)]
    if not tops:
        raise MergeError(f"card page {j + 1} has no structure elements")
    for element in tops:
        _unpage(element, page, j)
        del element["/P"]
    annots = page.get("/Annots", pikepdf.Array())
    links = pikepdf.Array()
    for annot in annots:
        if "/P" in annot:
            del annot["/P"]
        links.append(nums[int(annot.StructParent)] if "/StructParent" in annot else None)
    contents = page.Contents if isinstance(page.Contents, pikepdf.Array) else \
        pikepdf.Array([page.Contents])
    return pikepdf.Array([page.Resources, contents, annots, pikepdf.Array(tops),
                          nums[int(page.StructParents)], links])


def _same(a: Any, b: Any) -> bool:
    """Whether ``a`` is the page object ``b`` (after :func:`_unpage`, /Pg may be an integer)."""
    import pikepdf

    return isinstance(a, pikepdf.Dictionary) and a.is_indirect and a.objgen == b.objgen


def _with_pages(node: Any):
    """``node`` and every dictionary under it in the structure tree (elements, marked-content
    and object references) that has a /Pg."""
    import pikepdf

    todo = [node]
    while todo:
        item = todo.pop()
        if not isinstance(item, pikepdf.Dictionary):
            continue
        if "/Pg" in item:
            yield item
        if item.get("/Type") != "/OBJR":
            kids = item.get("/K")
            todo.extend(kids if isinstance(kids, pikepdf.Array) else [kids])


def _unpage(node: Any, page: Any, j: int) -> None:
    """Replace every /Pg pointing at ``page`` under ``node`` with the integer ``j``."""
    for item in _with_pages(node):
        if _same(item.Pg, page):
            item.Pg = j


def _repage(node: Any, page: Any) -> None:
    """Undo :func:`_unpage` in the copy: every integer /Pg becomes ``page``."""
    import pikepdf

    for item in _with_pages(node):
        if not isinstance(item.Pg, pikepdf.Dictionary):
            item.Pg = page


def _graft(pdf: Any, page: Any, part: Any, document: Any, nums: dict[int, Any],
           next_key: int) -> int:
    """Give the stub ``page`` its card: drawing, links and structure; the next free key."""
    import pikepdf

    resources, contents, annots, tops, entry, links = list(part)
    obj = page.obj
    margins = _form(pdf, page)
    resources = pikepdf.Dictionary(resources)  # a copy: the cards' pages may share theirs
    xobjects = pikepdf.Dictionary()
    for key, value in resources.get("/XObject", {}).items():
        xobjects[key] = value
    xobjects[MARGINS_XOBJECT] = margins
    resources.XObject = xobjects
    # The stub page drew only its running head and page number (pagination artifacts).
    under = pdf.make_stream(
        f"/Artifact <</Type /Pagination>> BDC q {MARGINS_XOBJECT} Do Q EMC\n".encode("ascii"))
    obj.Resources = resources
    obj.Contents = pikepdf.Array([under, *contents])
    for element in tops:
        _repage(element, obj)
        element.P = document
    kids = list(document.K)
    old = [i for i, e in enumerate(kids) if _same(e.get("/Pg"), obj)]
    at = old[0] if old else len(kids)
    kids = [e for e in kids if not _same(e.get("/Pg"), obj)]
    document.K = pikepdf.Array(kids[:at] + list(tops) + kids[at:])
    nums[int(obj.StructParents)] = entry
    for annot, link in zip(annots, links):
        if link is not None:
            annot.StructParent = next_key
            nums[next_key] = link
            next_key += 1
        annot.P = obj
    if len(annots):
        obj.Annots = annots
    elif "/Annots" in obj:
        del obj["/Annots"]
    return next_key


def _form(pdf: Any, page: Any) -> Any:
    """The stub page's drawing as a form XObject (a copy: the page's content is replaced
    next), without the empty marked-content sequences WeasyPrint opened for the blank stub;
    anything tagged actually drawn there is a MergeError."""
    import pikepdf

    ops = list(pikepdf.parse_content_stream(page))
    kept, i = [], 0
    while i < len(ops):
        if str(ops[i].operator) == "BDC" and "/MCID" in _props(ops[i]):
            if i + 1 >= len(ops) or str(ops[i + 1].operator) != "EMC":
                raise MergeError(f"page {page.index + 1}: its stand-in card draws tagged content")
            i += 2
            continue
        kept.append(ops[i])
        i += 1
    return pdf.make_stream(pikepdf.unparse_content_stream(kept), Type=pikepdf.Name.XObject,
                           Subtype=pikepdf.Name.Form, BBox=page.obj.MediaBox,
                           Resources=page.obj.Resources)


def _props(op: Any) -> Any:
    import pikepdf

    operands = list(op.operands)
    return operands[1] if len(operands) > 1 and isinstance(operands[1], pikepdf.Dictionary) \
        else {}


def _names(pdf: Any) -> dict[str, Any]:
    """The document's named destinations, {name: destination array}."""
    try:
        flat = list(pdf.Root.Names.Dests.Names)
    except AttributeError:
        return {}
    return {str(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


def _card_names(src: Any) -> dict[str, tuple[int, list[Any]]]:
    """The cards document's named destinations as {name: (card page index, [/XYZ x y zoom])}."""
    index = {src.pages[j].obj.objgen: j for j in range(len(src.pages))}
    return {name: (index[dest[0].objgen], list(dest)[1:])
            for name, dest in _names(src).items() if dest[0].objgen in index}


def _move_names(pdf: Any, card_names: dict[str, tuple[int, list[Any]]],
                pages: dict[int, Any]) -> None:
    """Destinations on a stub page move to where the card puts them, and a card's own anchors
    (absent from the book) are added; the book's other names stay (the cards document only
    pretended to have those, so that its links to them were kept)."""
    import pikepdf

    names = _names(pdf)
    stub_pages = {page.objgen for page in pages.values()}
    for name, (j, where) in card_names.items():
        if name in names and names[name][0].objgen not in stub_pages:
            continue
        names[name] = pikepdf.Array([pages[j], *where])
    if names:
        flat = pikepdf.Array([x for name in sorted(names)
                              for x in (pikepdf.String(name), names[name])])
        pdf.Root.Names.Dests = pdf.make_indirect(pikepdf.Dictionary(Names=flat))


def _move_outline(pdf: Any, src: Any, pages: dict[int, Any], stubs: list[int]) -> None:
    """Outline entries on a stub page take the position of the card's entry with the same
    title on the card's page."""
    import pikepdf

    positions: dict[tuple[int, str], list[Any]] = {}
    index = {src.pages[j].obj.objgen: j for j in range(len(src.pages))}
    for item in _outline_items(src.Root.get("/Outlines")):
        dest = item.get("/Dest")
        if isinstance(dest, pikepdf.Array) and dest[0].objgen in index:
            positions.setdefault((index[dest[0].objgen], str(item.Title)), list(dest)[1:])
    stub_index = {pdf.pages[p].obj.objgen: j for j, p in enumerate(stubs)}
    for item in _outline_items(pdf.Root.get("/Outlines")):
        dest = item.get("/Dest")
        if isinstance(dest, pikepdf.Array) and dest[0].objgen in stub_index:
            where = positions.get((stub_index[dest[0].objgen], str(item.Title)))
            if where is not None:
                item.Dest = pikepdf.Array([dest[0], *where])


def _outline_items(node: Any):
    if node is None:
        return
    item = node.get("/First")
    while item is not None:
        yield item
        yield from _outline_items(item)
        item = item.get("/Next")
