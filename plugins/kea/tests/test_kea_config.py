"""``[dhcp.kea]``: the URL forms the seed and DESIGN name."""

import pytest

from virshle_core.config import parse_config
from virshle_core.errors import ConfigError
from virshle_core.hooks import config_sections


@pytest.mark.parametrize("url", ["tcp://localhost:5547", "unix:///run/kea/kea4-ctrl-socket",
                                 "http://127.0.0.1:8000", "https://kea.lan:8443"])
def test_accepted(url):
    config = parse_config(f'[dhcp.kea]\nurl = "{url}"\n', path="c", sections=config_sections())
    assert config.section("dhcp.kea").url == url


@pytest.mark.parametrize("url,problem", [
    ("tcp://localhost", '"tcp://localhost" needs a port (tcp://host:port)'),
    ("unix://relative", '"unix://relative" must be unix:///absolute/path/to/kea4-ctrl-socket'),
    ("http://:80", '"http://:80" needs a host'),
])
def test_refused(url, problem):
    with pytest.raises(ConfigError) as info:
        parse_config(f'[dhcp.kea]\nurl = "{url}"\n', path="c", sections=config_sections())
    assert info.value.problems == [f"c:2: dhcp.kea.url: {problem}"]


def test_url6_is_checked_like_url():
    with pytest.raises(ConfigError) as info:
        parse_config('[dhcp.kea]\nurl6 = "ftp://x"\n', path="c", sections=config_sections())
    assert info.value.problems == ['c:2: dhcp.kea.url6: "ftp://x" must start with unix://, http://, https:// or tcp://']
