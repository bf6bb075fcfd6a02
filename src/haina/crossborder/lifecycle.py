"""The customs declaration's lifecycle as data (see ``haina.core.lifecycle``).

ready (messages generated, the three documents agree) → accepted (a receipt that the customs
or the China e-port took a message in) → released (CEB622 800 放行 or 899 结关); rejected from
ready or accepted (a negative status, CEB622 100 退单, 4 failed, 700 returned). Each further
receipt or the CEB816 tax bill is recorded without moving the state.
"""

from __future__ import annotations

from haina.core.lifecycle import START, Lifecycle, pairs

DECLARATION_LIFECYCLE = Lifecycle("declaration", "crossborder.", {
    "crossborder.declaration.ready": pairs((START, "ready")),
    "crossborder.declaration.accepted": pairs(("ready", "accepted"), ("accepted", "accepted")),
    "crossborder.declaration.released": pairs(("ready", "released"), ("accepted", "released")),
    "crossborder.declaration.rejected": pairs(("ready", "rejected"), ("accepted", "rejected")),
    "crossborder.declaration.receipt": pairs(("ready", "ready"), ("accepted", "accepted"),
                                             ("released", "released"),
                                             ("rejected", "rejected")),
})

#: a foreign brand's qualification file: submitted → approved or rejected (by platform staff
#: or a delegated reviewer app); a rejected, revoked or expired file is submitted again; an
#: approved one revoked, or expired by the worker when its authorisation or a document runs
#: out (its products are unlisted at once either way), after a reminder (``brand.expiring``)
BRAND_LIFECYCLE = Lifecycle("brand qualification", "brand.", {
    "brand.submitted": pairs((START, "submitted"), ("rejected", "submitted"),
                             ("revoked", "submitted"), ("expired", "submitted")),
    "brand.approved": pairs(("submitted", "approved")),
    "brand.rejected": pairs(("submitted", "rejected")),
    "brand.revoked": pairs(("approved", "revoked")),
    "brand.expiring": pairs(("approved", "approved")),
    "brand.expired": pairs(("approved", "expired")),
})
