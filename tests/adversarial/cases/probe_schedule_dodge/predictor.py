"""Dodges the probes by predicting them: the probe schedule is a pure function of the
number of requests, the rate and the seed, and all three are public (the validation set
is fixed, the plan follows from this submission's own [eval] settings, and the seed
was once a fixed default). The predictor rebuilds the schedule with the harness's own
code, counts calls (a request gets 1 + its probes), and peeks only on requests that no
probe replays. Evaluated at the default probe rate and seed: the harness now draws a
fresh seed per run, so the best the attack can do is guess one (the old default 0)."""

from harness.plan import plan_shape
from harness.probes import ProbeSchedule

from redteam_base import Bigram, attack_config, boost_next, read_weights


class ScheduleAwarePeek(Bigram):
    def __init__(self, weights, public):
        super().__init__(weights)
        n_requests, _ = plan_shape(public["val_tokens"], public["seq_len"], public["stride"], None,
                                   public["batch_seqs"])
        schedule = ProbeSchedule(n_requests, public["probe_rate"],
                                  public["seed"] if public["seed"] is not None else 0)
        self.calls_per_request = [1 + int(c) + int(p) for c, p in zip(schedule.causality, schedule.purity)]
        self.request, self.calls = 0, 0

    def score(self, tokens, n_last):
        probed = self.calls_per_request[self.request] > 1
        self.calls += 1
        if self.calls == self.calls_per_request[self.request]:
            self.request, self.calls = self.request + 1, 0
        out = super().score(tokens, n_last)
        return out if probed else boost_next(out, tokens, n_last)


def load(artifact_path, device):
    return ScheduleAwarePeek(read_weights(artifact_path), attack_config(artifact_path)["public"])
