"""Zalo settings: read from the environment, secrets never echoed, Zalo's secret rule."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import ConfigError


def test_zalo_settings_from_the_environment(make_settings: Any) -> None:
    settings = make_settings(
        {
            "CRISISDESK_ZALO_TOKEN": "1459232241454765289:abc",
            "CRISISDESK_ZALO_API_URL": "http://127.0.0.1:9000/",
            "CRISISDESK_ZALO_WEBHOOK_SECRET": "eight-chars-or-more",
            "CRISISDESK_ZALO_OA_APP_ID": "3158806452351286345",
        }
    )
    assert settings.zalo_token is not None
    assert settings.zalo_token.get_secret_value() == "1459232241454765289:abc"
    assert settings.zalo_api_url == "http://127.0.0.1:9000"
    assert settings.zalo_oa_app_id == "3158806452351286345"
    assert make_settings().zalo_api_url == "https://bot-api.zaloplatforms.com"


def test_a_short_zalo_webhook_secret_is_refused_without_echoing_it(make_settings: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings({"CRISISDESK_ZALO_WEBHOOK_SECRET": "short1"})
    assert "CRISISDESK_ZALO_WEBHOOK_SECRET" in str(caught.value)
    assert "8-256" in str(caught.value) and "short1" not in str(caught.value)
