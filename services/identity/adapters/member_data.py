"""What identity holds about a shopper, as one brand's member may ask for it (libs.privacy
holdings; exported only).

The account, its linked identities and its phone are the shopper's across every brand:
leaving one brand's card closes none of them, so nothing here is erased on cancellation
(closing the account is a request to the platform, not to a brand). External ids are masked
as the product masks them, and the phone number is never exported, only whether one is on
file: the brand never sees it either (docs/architecture.md, Identity)."""

from __future__ import annotations

from libs.privacy import Action, Holding, mask_identifier

_ACCOUNT = "$1::text <> '' AND account_id = $2"
_ACROSS_BRANDS = ("the shopper's account across every brand: leaving one brand's card does "
                  "not close it")

HOLDINGS = (
    Holding("accounts", _ACCOUNT, Action.KEEP, section="account",
            description="The Brandclub account and the marketplace account it belongs to.",
            order_by="account_id", masks={"marketplace_account_id": mask_identifier},
            keep_reason=_ACROSS_BRANDS),
    Holding("linked_identities", _ACCOUNT, Action.KEEP, section="linked_identities",
            description="External identities linked to the account (ids masked).",
            order_by="linked_at, kind, scope", masks={"external_id": mask_identifier},
            keep_reason=_ACROSS_BRANDS),
    Holding("identity_link_history", _ACCOUNT, Action.KEEP, section="link_history",
            description="Every link and unlink of an external identity (ids masked).",
            order_by="id", masks={"external_id": mask_identifier},
            keep_reason=_ACROSS_BRANDS + "; the audit of links"),
    Holding("phone_vault", _ACCOUNT, Action.KEEP, section="phone",
            description="Whether a phone number is on file (the number itself is never "
                        "exported or shown to the brand).",
            order_by="account_id",
            export_from="(SELECT account_id, true AS phone_on_file, updated_at "
                        "FROM phone_vault) AS phone_vault",
            keep_reason=_ACROSS_BRANDS),
    Holding("phone_reveals", "brand_id = $1 AND account_id = $2", Action.KEEP,
            section="phone_reveals",
            description="When the brand's messages needed the phone number, and for what.",
            order_by="revealed_at, id",
            keep_reason="the audit of every use of the plaintext phone (PIPL art. 55)"),
)
