"""Members: one customer across channels, tiers by rolling spend, and a points ledger.

The public face of the module (with ``schemas``). Functions take a ``Session`` and the caller's
``Tenant``, never commit or roll back, and raise ``haina.core.errors`` problems. The work is
done in private modules, one per aggregate:

* ``records``: loading and locking a member, following merges to the survivor;
* ``profiles``: enrolling, listing, changing and merging members;
* ``identities``: channel identities and who holds one;
* ``points``: the points ledger (its rules are in that module's docstring and docs/members.md);
* ``tiers``: tiers and placing members in them;
* ``personal``: the consent log, campaign audiences, a person's export and erasure.
"""

from __future__ import annotations

from haina.members.identities import add_identity as add_identity
from haina.members.identities import find_member_by_identity as find_member_by_identity
from haina.members.identities import parse_identity as parse_identity
from haina.members.identities import remove_identity as remove_identity
from haina.members.personal import campaign_audience as campaign_audience
from haina.members.personal import erase_members as erase_members
from haina.members.personal import export_member_data as export_member_data
from haina.members.personal import list_consent_log as list_consent_log
from haina.members.personal import personal_values as personal_values
from haina.members.personal import withdrawn_member_ids as withdrawn_member_ids
from haina.members.points import adjust_points as adjust_points
from haina.members.points import expire_points as expire_points
from haina.members.points import list_points as list_points
from haina.members.points import points_for as points_for
from haina.members.points import points_ledger_sum as points_ledger_sum
from haina.members.points import record_purchase as record_purchase
from haina.members.points import record_refund as record_refund
from haina.members.points import redeem_points as redeem_points
from haina.members.points import restore_points as restore_points
from haina.members.profiles import create_member as create_member
from haina.members.profiles import list_members as list_members
from haina.members.profiles import merge_members as merge_members
from haina.members.profiles import update_consents as update_consents
from haina.members.profiles import update_member as update_member
from haina.members.records import consenting_member_ids as consenting_member_ids
from haina.members.records import get_member as get_member
from haina.members.records import member_history_ids as member_history_ids
from haina.members.records import merge_survivors as merge_survivors
from haina.members.records import resolve_buyer as resolve_buyer
from haina.members.records import resolve_buyer_id as resolve_buyer_id
from haina.members.records import resolve_member_id as resolve_member_id
from haina.members.records import tier_id_of as tier_id_of
from haina.members.tiers import create_tier as create_tier
from haina.members.tiers import get_tier as get_tier
from haina.members.tiers import list_tiers as list_tiers
from haina.members.tiers import reevaluate_tiers as reevaluate_tiers
from haina.members.tiers import update_tier as update_tier

__all__ = [
    "add_identity", "adjust_points", "campaign_audience", "consenting_member_ids",
    "erase_members", "export_member_data", "list_consent_log", "personal_values",
    "withdrawn_member_ids", "create_member", "create_tier",
    "expire_points", "find_member_by_identity", "get_member", "get_tier", "list_members",
    "list_points", "list_tiers", "member_history_ids", "merge_members", "merge_survivors",
    "parse_identity", "points_for", "points_ledger_sum", "record_purchase", "record_refund",
    "redeem_points", "reevaluate_tiers", "remove_identity", "resolve_buyer", "resolve_buyer_id", "resolve_member_id",
    "restore_points", "update_consents", "update_member", "update_tier",
]
