"""Finishing WeasyPrint's PDF/UA tagging before the file is written: table header scope, link
descriptions, and running heads and page numbers marked as pagination artifacts.

WeasyPrint 70 tags the document but leaves three things PDF/UA-1 asks for (Matterhorn
checkpoints 15-003, 28-011 and 18/01-005): it gives ``TH`` cells no ``/Scope``, describes a
link by its target (``exercise-cheek-lift``) rather than its words, and tags the text of
the page-margin boxes with structure elements that it then leaves out of the structure tree.
:func:`finish_tags` is passed to ``Document.write_pdf(finisher=...)``, which calls it with the
laid-out document and the PDF objects (pydyf) just before they are serialised.
"""

from __future__ import annotations

import re

SCOPES = {"row": "/Row", "col": "/Column", "rowgroup": "/Row", "colgroup": "/Column"}
_REF = re.compile(rb"^(\d+) 0 R$")


def finish_tags(document, pdf) -> None:
    """Complete the tagging of ``pdf`` (pydyf) laid out from ``document`` (WeasyPrint)."""
    import pydyf  # type: ignore[import-untyped]  # WeasyPrint's PDF writer; no type information

    for page in document.pages:
        for box in page._page_box.descendants():
            _scope_header(box)
        _describe_links(page._page_box, None, pydyf)
    _links_under_link_elements(pdf, pydyf)
    _pagination_artifacts(pdf, pydyf)


def _scope_header(box) -> None:
    # WeasyPrint keeps each TH/TD's structure element on its box as ``mark``.
    mark = getattr(box, "mark", None)
    if mark is not None and box.element_tag == "th":
        mark["A"]["Scope"] = SCOPES.get(box.element.get("scope", "col"), "/Column")


def _describe_links(box, link, pydyf) -> None:
    """Describe each link annotation by the words of its ``<a>`` (for an image link, the
    picture's alt text); a link drawn in several boxes gets one annotation per box."""
    if getattr(box, "element_tag", None) == "a" and box.element is not None:
        link = box.element
    annotation = getattr(box, "link_annotation", None)
    if annotation is not None and link is not None:
        words = " ".join(" ".join(link.itertext()).split())
        if not words:
            words = " ".join(img.get("alt", "") for img in link.iter("img")).strip()
        if words:
            annotation["Contents"] = pydyf.String(words)
    for child in getattr(box, "children", ()):
        _describe_links(child, link, pydyf)


def _links_under_link_elements(pdf, pydyf) -> None:
    """Move each link annotation's object reference (OBJR) that WeasyPrint hung on a child of
    a link (a block inside ``<a>``) up to the enclosing Link element."""
    objects = pdf.objects
    root = objects[_number(pdf.catalog["StructTreeRoot"])]
    nums = objects[_number(root["ParentTree"])]["Nums"]
    parent_of = {nums[i]: i + 1 for i in range(0, len(nums), 2) if isinstance(nums[i], int)}
    for element in list(objects):
        if not (isinstance(element, pydyf.Dictionary) and element.get("Type") == "/StructElem"
                and element.get("S") != "/Link"):
            continue
        objrs = [k for k in element["K"] if _is_objr(objects, k)]
        link = element
        while link is not None and link.get("S") != "/Link":
            number = _ref(link.get("P", b""))
            link = objects[number] if number is not None else None
        if link is None or not objrs:
            continue
        for ref in objrs:
            element["K"].remove(ref)
            link["K"].append(ref)
            annotation = objects[_number(objects[_number(ref)]["Obj"])]
            nums[parent_of[annotation["StructParent"]]] = link.reference


def _is_objr(objects, ref) -> bool:
    number = _ref(ref) if isinstance(ref, (bytes, str)) else None
    return number is not None and objects[number].get("Type") == "/OBJR"


def _ref(item) -> int | None:
    """The object number of an indirect reference (``b"12 0 R"``); None for anything else."""
    found = _REF.match(item if isinstance(item, bytes) else str(item).encode())
    return int(found[1]) if found else None


def _number(ref) -> int:
    number = _ref(ref)
    assert number is not None, ref
    return number


def _pagination_artifacts(pdf, pydyf) -> None:
    """Re-mark the marked content of structure elements outside the tree (WeasyPrint's
    page-margin boxes: running heads, page numbers) as ``/Artifact <</Type /Pagination>>``."""
    objects = pdf.objects
    root = objects[_number(pdf.catalog["StructTreeRoot"])]
    reachable: set[int] = set()
    todo = [n for n in map(_ref, root["K"]) if n is not None]
    while todo:
        number = todo.pop()
        if number not in reachable:
            reachable.add(number)
            kids = objects[number].get("K", [])
            todo.extend(n for n in map(_ref, kids) if n is not None)
    orphans: dict[int, set[int]] = {}  # page object number -> MCIDs to re-mark
    for obj in objects:
        if (isinstance(obj, pydyf.Dictionary) and obj.get("Type") == "/StructElem"
                and obj.number not in reachable and "Pg" in obj):
            orphans.setdefault(_number(obj["Pg"]), set()).update(
                k for k in obj["K"] if isinstance(k, int))
    nums = objects[_number(root["ParentTree"])]["Nums"]
    for index, page_ref in enumerate(pdf.page_references):
        mcids = orphans.get(_number(page_ref), set())
        if mcids:
            _remark(objects[_number(objects[_number(page_ref)]["Contents"])], mcids, pydyf)
            parents = nums[2 * index + 1]  # this page's MCID -> structure element array
            for mcid in mcids:
                parents[mcid] = b"null"


def _remark(stream, mcids: set[int], pydyf) -> None:
    ops = stream.stream
    for i, item in enumerate(ops):
        if isinstance(item, pydyf.Dictionary) and item.get("MCID") in mcids:
            ops[i - 1] = "/Artifact"
            ops[i] = pydyf.Dictionary({"Type": "/Pagination"})
