"""Placement groups a `train` study leaves behind, released when the study ends.

Ray Train V2 hands a worker group's placement group to its cleaner actor only once every worker
has started (10-30 s here). When Tune stops a trial in that window (the --time-budget deadline,
a lost node), the trial's controller dies, the cleaner has nothing to remove, and the placement
group lives as long as the driver: Ray ties it to the job (ray-project/ray#58515, #62753). Later
studies of the same sweep then wait forever for the CPUs it holds (Train retries a worker group
that cannot start without limit). Seen in CI: a 2-worker trial starved by two such leftovers.
"""

from __future__ import annotations

import logging

import ray
from ray.util.placement_group import PlacementGroup, remove_placement_group

log = logging.getLogger(__name__)


def live_placement_groups() -> set[str]:
    """Hex ids of this job's placement groups that Ray has not removed.

    A placement group id ends with its creator's job id, and Train's controllers run in the
    driver's job, so this also finds the groups they created.
    """
    job = ray.get_runtime_context().get_job_id()
    return {pg_id for pg_id, info in ray.util.placement_group_table().items()
            if pg_id.endswith(job) and info["state"] != "REMOVED"}


def release_placement_groups(keep: set[str]) -> int:
    """Remove this job's live placement groups whose ids are not in `keep`; return how many.

    Call it when no trial of the study runs any more (after Tuner.fit), with `keep` taken
    before the study started, so only groups the study created and nobody removed go.
    """
    leftover = sorted(live_placement_groups() - keep)
    for pg_id in leftover:
        remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg_id))))
    if leftover:
        log.warning("released %d placement group(s) left by trials stopped while their workers "
                    "started", len(leftover))
    return len(leftover)
