"""The campaign's lifecycle as data (see ``haina.core.lifecycle``).

scheduled → running (the launch) ⇄ paused → ended. A scheduled campaign can be paused too (its
launch waits) and resumes as scheduled; any of them ends at its end. Renaming or moving the
end records ``campaign.updated`` without a change of state; the enrolment's events
(``campaign.member_targeted`` per treated member, ``campaign.enrolled`` per finished launch or
re-evaluation) happen while it runs (an enrolment that finishes just after a pause reports
as paused).
"""

from __future__ import annotations

from haina.core.lifecycle import START, Lifecycle, pairs

CAMPAIGN_LIFECYCLE = Lifecycle("campaign", "campaign.", {
    "campaign.created": pairs((START, "scheduled")),
    "campaign.launched": pairs(("scheduled", "running")),
    "campaign.member_targeted": pairs(("running", "running")),
    "campaign.enrolled": pairs(("running", "running"), ("paused", "paused")),
    "campaign.updated": pairs(("scheduled", "scheduled"), ("running", "running"),
                              ("paused", "paused"), ("scheduled", "paused"),
                              ("running", "paused"), ("paused", "running"),
                              ("paused", "scheduled")),
    "campaign.ended": pairs(("scheduled", "ended"), ("running", "ended"), ("paused", "ended")),
})
