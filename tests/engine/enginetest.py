"""Constants shared by the real-engine tests (a uniquely named module, unlike conftest)."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGISTRY_IMAGE = "127.0.0.1:5000/condor-docker-test/busybox:1"
LOCAL_IMAGE = "condor-docker-test/busybox:local"
