"""Tier 1: the app in-process (Starlette TestClient), a fresh data dir per test."""
from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from tests.helpers import BROWSER_UA, ORIGIN, TenantKeys, make_settings


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def client(app):
    with TestClient(app, headers={"user-agent": BROWSER_UA, "origin": ORIGIN}) as c:
        yield c


@pytest.fixture
def make_tenant(app):
    def make(slug="shop", origins=(ORIGIN,), **kw) -> TenantKeys:
        t, secret = app.state.registry.create(slug, origins, **kw)
        return TenantKeys(t, secret)
    return make


@pytest.fixture
def shop(make_tenant):
    return make_tenant("shop")
