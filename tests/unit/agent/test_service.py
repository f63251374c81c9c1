"""agent/service.advertised_networks: DockerNetworks in the form condor_submit's requirement can match."""
from __future__ import annotations

from condor_docker.agent.service import advertised_networks


def test_networks_are_one_comma_separated_string():
    """A string, never a list: condor_submit's StringListMember(My.DockerNetworkType, TARGET.DockerNetworks)
    is ERROR on a list (the classad2 wheel lacks StringListMember, so the real match is checked by
    tests/conformance, case network-admin)."""
    assert advertised_networks(("mynet", "other"), ()) == "mynet,other"
    assert advertised_networks((), ()) == ""


def test_networks_the_engine_lacks_are_left_out():
    assert advertised_networks(("mynet", "gone"), ("mynet", "host")) == "mynet"
