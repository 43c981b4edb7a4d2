"""Container image names as job files write them, checked against the OCI reference grammar.

``[registry[:port]/]path[:tag][@digest]`` as the distribution project defines it: path
components in lower case (``a-z``, digits, separated by ``.``, ``_``, ``__`` or dashes), a tag
of at most 128 word characters, dots and dashes, a digest ``algorithm:hex``; the name at most
255 characters. A name outside it never reaches a pod: the job file gets a problem at the
``image`` line saying what is wrong (spaces, a leading ``-``, upper case...). ``${{ … }}`` in
a name is checked once it is replaced (:func:`image_problem` with ``template=True`` checks the
rest). Pure.
"""

from __future__ import annotations

import re

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REFERENCE = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII)
MAX_NAME = 255
MAX_REFERENCE = 1024
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
EXAMPLE = "e.g. registry.example.com/team/image:1.2"


def image_problem(image: str, *, template: bool = False) -> str:
    """What is wrong with ``image`` as an image reference ("" when nothing). ``template``: the
    name may still hold ``${{ … }}`` expressions (each read as one lower-case letter)."""
    text = _EXPRESSION.sub("x", image) if template else image
    shown = image if len(image) <= 80 else image[:77] + "..."
    if not text:
        return "the image name is empty"
    if len(image) > MAX_REFERENCE:
        return f"the image name is {len(image)} characters long; at most {MAX_REFERENCE}"
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        return f"the image {shown!r} contains spaces or control characters"
    if text.startswith("-"):
        return f"the image {shown!r} starts with '-'"
    match = REFERENCE.fullmatch(text)
    if match is None:
        first, slash, rest = text.split("@", 1)[0].partition("/")
        registry = slash and ("." in first or ":" in first or first == "localhost")
        repository = rest if registry else f"{first}{slash}{rest}"
        if any(ch.isupper() for ch in repository.split(":", 1)[0]):
            return f"the image {shown!r}: repository names are lower case ({EXAMPLE})"
        return f"the image {shown!r} is not an image reference ({EXAMPLE})"
    if len(match.group("name")) > MAX_NAME:
        return f"the image's name is longer than {MAX_NAME} characters"
    return ""
