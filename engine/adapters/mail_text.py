"""The text a person wrote in a mail: the body as text (HTML reduced to it) and the reply
split from the quote of the mail it answers.

What a person wrote is the text above the quote of our mail; the tags usually sit in that
quote (a reply keeps them) or are typed above it. HTML-only mail is reduced to text first,
with `<blockquote>` turned into `>` lines so one quote detector serves every client.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from html.parser import HTMLParser

# Where a client starts quoting the mail it answers (Gmail, Apple Mail, Thunderbird, Outlook).
QUOTE_STARTS = [re.compile(p, re.IGNORECASE) for p in (
    r"^>",
    r"^On .{0,200}\bwrote:\s*$",
    r"^Am .{0,200}\bschrieb .{0,200}:\s*$",
    r"^Le .{0,200}\ba écrit\s*:\s*$",
    r"^-{2,}\s*Original Message\s*-{2,}\s*$",
    r"^_{10,}\s*$",
    r"^From:\s.+$",
)]
WRAPPED_ATTRIBUTION = re.compile(r"^On .{0,200}$", re.IGNORECASE)
BLOCK_TAGS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table",
              "ul", "ol", "pre", "hr", "blockquote"}
SKIP_TAGS = {"style", "script", "head", "title"}


class _TextFromHtml(HTMLParser):
    """HTML to text: blocks become lines, blockquotes become `>` lines, scripts vanish."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.depth = 0  # blockquote nesting
        self.skipping = 0

    def _break(self, blank: bool = False) -> None:
        """Ends the current line; `blank` keeps an empty one (a <br> or an empty <p>)."""
        line = re.sub(r"[ \t\u00a0]+", " ", "".join(self.current)).strip()
        self.current = []
        prefix = "> " * self.depth
        if line:
            self.lines.append(prefix + line)
        elif blank and self.lines and self.lines[-1].strip("> "):
            self.lines.append(prefix.rstrip())

    def handle_starttag(self, tag, attrs) -> None:
        if tag in SKIP_TAGS:
            self.skipping += 1
        elif tag in BLOCK_TAGS:
            self._break(blank=tag == "br")
            self.depth += tag == "blockquote"

    def handle_endtag(self, tag) -> None:
        if tag in SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in BLOCK_TAGS:
            self._break(blank=tag == "p")
            self.depth = max(0, self.depth - (tag == "blockquote"))

    def handle_data(self, data) -> None:
        if not self.skipping:
            self.current.append(data.replace("\r", "").replace("\n", " "))

    def text(self) -> str:
        self._break()
        return "\n".join(self.lines).strip()


def html_to_text(html: str) -> str:
    parser = _TextFromHtml()
    parser.feed(html)
    parser.close()
    return parser.text()


def _content(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, AssertionError):  # unknown or lying charset
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace")
    return content if isinstance(content, str) else content.decode("utf-8", errors="replace")


def body_text(message: EmailMessage) -> str:
    """The plain-text body, or the HTML body reduced to text when there is no plain part."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = _content(part)
    if part.get_content_subtype() == "html":
        return html_to_text(content)
    return content.replace("\r\n", "\n")


def _quote_start(lines: list[str]) -> int | None:
    for number, line in enumerate(lines):
        stripped = line.strip()
        if any(p.match(stripped) for p in QUOTE_STARTS):
            return number
        # Gmail wraps a long "On <date>, <name> <address> wrote:" over two lines.
        following = lines[number + 1].strip() if number + 1 < len(lines) else ""
        if WRAPPED_ATTRIBUTION.match(stripped) and following.lower().endswith("wrote:"):
            return number
    return None


def _unquote(lines: list[str]) -> str:
    return "\n".join(re.sub(r"^\s*(>\s?)+", "", line) for line in lines)


def _without_signature(text: str) -> str:
    head, sep, _ = text.partition("\n-- \n")
    return head if sep else text


def split_reply(text: str) -> tuple[str, str]:
    """(what the sender wrote, the quoted mail without quote markers)."""
    lines = text.replace("\r\n", "\n").split("\n")
    start = _quote_start(lines)
    if start is None:
        return _without_signature(text).strip(), ""
    return _without_signature("\n".join(lines[:start])).strip(), _unquote(lines[start:]).strip()

