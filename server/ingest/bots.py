"""Obvious bots: known crawler user agents, headless browsers, the widget's webdriver flag."""
from __future__ import annotations

import re

BOT_UA = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|headless|phantomjs|puppeteer|playwright|selenium|lighthouse|"
    r"python-requests|python-httpx|aiohttp|curl/|wget/|go-http-client|java/|okhttp|scrapy|facebookexternalhit|"
    r"bingpreview|yandex|baiduspider|ahrefs|semrush|mj12|petalbot|gptbot|ccbot|claudebot|bytespider",
    re.IGNORECASE,
)


def bot_reason(user_agent: str | None, webdriver: bool) -> str | None:
    """Why this request looks automated, or None."""
    if webdriver:
        return "bot_webdriver"
    if not user_agent:
        return "bot_no_user_agent"
    if BOT_UA.search(user_agent):
        return "bot_user_agent"
    return None
