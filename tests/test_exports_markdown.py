"""The Markdown export of testimonials, read back through a CommonMark parser: every quote is one paragraph of
exactly its text. Regression: "=", "~~~" and "1)" were not escaped, so quotes turned into setext headings, code
blocks and numbered lists."""

import html

import pytest
from markdown_it import MarkdownIt

from crm import exports

META = {"provider": "Brightwater Homecare", "scope": "Leeds"}


def rendered(quote: str, attribution: str = "Olive Oak") -> str:
    row = {"Quote": quote, "Received on": "2026-02-20", "Attribution": attribution}
    return (
        MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(exports.testimonials_markdown([row], META))
    )


def page(quote_html: str, attribution: str = "Olive Oak") -> str:
    return (
        "<h1>What our partners say</h1>\n"
        "<p>Brightwater Homecare, Leeds.</p>\n"
        f"<blockquote>\n<p>{quote_html}</p>\n<p>— {attribution}, February 2026</p>\n</blockquote>\n"
    )


@pytest.mark.parametrize(
    "quote",
    [
        "Brilliant team\n===",
        "Brilliant team\n---",
        "===",
        "~~~",
        "~~~\nfenced\n~~~",
        "```\nfenced\n```",
        "1) They called back the same day",
        "1. They called back the same day",
        "2026. A year of safe discharges",
        "- quick\n+ kind\n* calm",
        "# Best provider",
        "> quoted already",
        "    four spaces in",
        "\tand a tab",
        "*really* _very_ ~~not~~ `good`",
        "[click](https://evil.example) ![px](https://evil.example/px.png)",
        "<b>bold</b> <https://evil.example>",
        "&amp; &#60; &copy; and Smith & Sons",
        "| a | b |\n|---|---|\n| c | d |",
        "back\\slash",
        "***",
    ],
)
def test_a_quote_is_one_paragraph_of_its_own_text(quote):
    """Test that a quote Markdown would otherwise make into a heading, code block, list, quote, table, link,
    emphasis or entity renders as one paragraph holding exactly the quote's text (leading spaces aside)."""
    text = "\n".join(line.lstrip(" \t") for line in quote.split("\n"))
    assert rendered(quote) == page(html.escape(text, quote=True).replace("&#x27;", "'"))


def test_an_attribution_is_text_too():
    """Test that an attribution (a giver's name) that looks like Markdown is shown as text."""
    assert rendered("Kind.", "1) [Olive](https://evil.example) ~~Oak~~") == page(
        "Kind.", "1) [Olive](https://evil.example) ~~Oak~~"
    )
