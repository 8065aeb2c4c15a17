"""Model tests run one intra-op thread per process: the CI machine has 2 cores and the
torchrun test starts two processes; spinning thread pools would only fight."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
