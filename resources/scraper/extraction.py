"""Selector syntax and extraction (parsel only, imported when first needed; no Scrapy).

Syntax of a selector string:

=================  =====================================================================
``css:h1.title``   CSS (parsel/cssselect), incl. ``::text`` and ``::attr(name)``
``xpath://h1``     XPath 1.0 (lxml), incl. ``text()`` and ``@attr``
``re:id=(\\d+)``    Python regex over the response text; group 1 if the pattern has groups,
                   the named groups as a dict if it has named groups, else the whole match
``h1.title``       no prefix: CSS, except a leading ``/``, ``./`` or ``(`` which is XPath
                   (no CSS selector can start with those)
=================  =====================================================================

A field (and the original ``extract``) is a selector plus options:
``type`` (``text`` | ``html`` | ``json`` | ``links``), ``attribute``, ``regex`` (a post-filter
applied to each value, same group rules as ``re:``), ``multiple`` (list vs first value).
For ``type: json`` the selector is a dotted path into the JSON body (``data.items.*.name``;
``*`` maps over a list or dict, an integer indexes a list); no selector = whole document.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

SelectorKind = Literal["css", "xpath", "re"]
ExtractType = Literal["text", "html", "json", "links"]
_WS = re.compile(r"\s+")


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Selector:
    kind: SelectorKind
    expr: str

    @classmethod
    def parse(cls, text: str) -> Selector:
        text = text.strip()
        for prefix in ("css:", "xpath:", "re:"):
            if text.startswith(prefix):
                kind: SelectorKind = prefix[:-1]  # type: ignore[assignment]
                sel = cls(kind, text[len(prefix) :].strip())
                break
        else:
            kind = "xpath" if text.startswith(("/", "./", "(")) else "css"
            sel = cls(kind, text)
        if not sel.expr:
            raise SelectorError(f"empty selector: {text!r}")
        sel.validate()
        return sel

    def validate(self) -> None:
        try:
            if self.kind == "re":
                _regex(self.expr)
            elif self.kind == "css":
                from parsel.csstranslator import HTMLTranslator

                HTMLTranslator().css_to_xpath(self.expr)
            else:
                from lxml import etree

                etree.XPath(self.expr)
        except Exception as exc:
            raise SelectorError(f"invalid {self.kind} selector {self.expr!r}: {exc}") from exc

    def __str__(self) -> str:
        return f"{self.kind}:{self.expr}"


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _match_value(m: re.Match[str]) -> Any:
    if m.re.groupindex:
        return m.groupdict()
    return m.group(1) if m.re.groups else m.group(0)


@dataclass(frozen=True)
class FieldSpec:
    selector: Selector | None = None
    type: ExtractType = "text"
    attribute: str | None = None
    regex: str | None = None
    multiple: bool = False

    @classmethod
    def from_obj(cls, obj: str | dict[str, Any], *, default_multiple: bool = False) -> FieldSpec:
        if isinstance(obj, str):
            return cls(selector=Selector.parse(obj), multiple=default_multiple)
        sel = obj.get("selector")
        typ = obj.get("type", "text")
        if typ not in ("text", "html", "json", "links"):
            raise SelectorError(f"unknown extract type {typ!r}")
        regex = obj.get("regex")
        if regex:
            try:
                _regex(regex)
            except re.error as exc:
                raise SelectorError(f"invalid regex {regex!r}: {exc}") from exc
        return cls(
            # json paths are not CSS/XPath: keep them verbatim
            selector=(Selector("css", sel) if typ == "json" else Selector.parse(sel))
            if sel
            else None,
            type=typ,
            attribute=obj.get("attribute"),
            regex=regex,
            multiple=bool(obj.get("multiple", default_multiple)),
        )


def _node_value(node: Any, spec: FieldSpec) -> str | None:
    """One parsel Selector node -> a string according to type/attribute."""
    if spec.attribute:
        attrib = getattr(node, "attrib", None)
        value = attrib.get(spec.attribute) if attrib else None
        return value.strip() if isinstance(value, str) else None
    if spec.type == "html":
        return node.get()
    # text: for an element, its text content; for a text/attribute node (``::text``,
    # ``@href``) its value; whitespace-normalised either way
    raw = node.get() if isinstance(node.root, str) else " ".join(node.xpath(".//text()").getall())
    return _WS.sub(" ", raw).strip()


def _post_regex(values: list[Any], regex: str | None) -> list[Any]:
    if not regex:
        return values
    pattern = _regex(regex)
    out = []
    for v in values:
        if isinstance(v, str) and (m := pattern.search(v)):
            out.append(_match_value(m))
    return out


def _json_path(doc: Any, path: str) -> list[Any]:
    nodes = [doc]
    for part in [p for p in path.split(".") if p]:
        nxt: list[Any] = []
        for n in nodes:
            if part == "*":
                nxt.extend(n.values() if isinstance(n, dict) else n if isinstance(n, list) else [])
            elif isinstance(n, dict) and part in n:
                nxt.append(n[part])
            elif (
                isinstance(n, list) and part.lstrip("-").isdigit() and -len(n) <= int(part) < len(n)
            ):
                nxt.append(n[int(part)])
        nodes = nxt
    return nodes


def extract(spec: FieldSpec, *, sel: Any, text: str, url: str, json_doc: Any = None) -> Any:
    """Apply ``spec`` to a page (``sel``: parsel Selector of the page or of an item node)."""
    values: list[Any]
    if spec.type == "json":
        doc = json_doc if json_doc is not None else json.loads(text)
        values = _json_path(doc, spec.selector.expr) if spec.selector else [doc]
    elif spec.type == "links":
        from urllib.parse import urljoin

        scope = _select(spec.selector, sel, text) if spec.selector else [sel]
        values = []
        for node in scope:
            if isinstance(node, str):
                values.append(urljoin(url, node))
                continue
            hrefs = node.xpath("self::a/@href | .//a/@href").getall()
            values.extend(urljoin(url, h.strip()) for h in hrefs)
        values = list(dict.fromkeys(values))
    elif spec.selector is None:
        values = [_node_value(sel, spec)]
    elif spec.selector.kind == "re":
        values = _select(spec.selector, sel, text)
    else:
        values = [
            v
            for v in (_node_value(n, spec) for n in _select(spec.selector, sel, text))
            if v is not None
        ]
    values = _post_regex(values, spec.regex)
    if spec.multiple:
        return values
    return values[0] if values else None


def _select(selector: Selector, sel: Any, text: str) -> list[Any]:
    if selector.kind != "re" and (
        sel is None or getattr(sel, "type", "html") not in ("html", "xml")
    ):
        return []  # CSS/XPath on a JSON or binary response: no match, not an error
    if selector.kind == "css":
        return list(sel.css(selector.expr))
    if selector.kind == "xpath":
        return list(sel.xpath(selector.expr))
    # re: over the node's markup when scoped to an item node, else over the page text
    haystack = (
        text
        if sel is None or getattr(sel, "root", None) is None or _is_document(sel)
        else sel.get()
    )
    return [_match_value(m) for m in _regex(selector.expr).finditer(haystack)]


def _is_document(sel: Any) -> bool:
    root = sel.root
    return hasattr(root, "getparent") and root.getparent() is None
