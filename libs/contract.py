"""What the protobuf contract says about each rpc: who may call it, and whether it is retry-safe.

Every rpc in `protos/brandclub/*/v1/*_service.proto` carries two method options:
`idempotency_level` (NO_SIDE_EFFECTS for reads, IDEMPOTENT for writes keyed by a request_id or
otherwise safe to repeat, IDEMPOTENCY_UNKNOWN for the rest) and
`(brandclub.api.v1.allowed_callers)`, the callers allowed to call it. Both are read here from
the generated descriptors, once, so that retry policies and caller authorization follow the
contract instead of hand-kept lists. Every generated `brandclub.*` module is imported on first
use, so a service added to `protos/` is covered without being named here.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

import brandclub
from brandclub.api.v1 import access_pb2

# The six services and the operator (the `./dev admin` CLI and the local stack's demo seed).
CALLERS = frozenset({"identity", "membership", "benefits", "engagement", "messaging", "gateway",
                     "operator"})
RETRY_SAFE_LEVELS = frozenset({MethodOptions.NO_SIDE_EFFECTS, MethodOptions.IDEMPOTENT})


@cache
def services() -> dict[str, ServiceDescriptor]:
    """Every gRPC service of the contract, by full name (`brandclub.membership.v1.X`)."""
    found: dict[str, ServiceDescriptor] = {}
    for module in pkgutil.walk_packages(brandclub.__path__, "brandclub."):
        if module.name.endswith("_pb2"):
            descriptor = importlib.import_module(module.name).DESCRIPTOR
            for service in descriptor.services_by_name.values():
                found[service.full_name] = service
    return found


def full_method_name(method: MethodDescriptor) -> str:
    """The gRPC path of a method: `/package.Service/Method`."""
    return f"/{method.containing_service.full_name}/{method.name}"


@cache
def _callers() -> dict[str, frozenset[str]]:
    table: dict[str, frozenset[str]] = {}
    for service in services().values():
        for method in service.methods:
            names = method.GetOptions().Extensions[access_pb2.allowed_callers]
            if names:
                table[full_method_name(method)] = frozenset(names)
    return table


def allowed_callers(full_method: str) -> frozenset[str] | None:
    """Callers the contract allows on `/package.Service/Method`; None when not annotated (deny)."""
    return _callers().get(full_method)


def idempotency_level(method: MethodDescriptor) -> int | None:
    """The method's declared `idempotency_level`, or None when the rpc does not declare one."""
    options = method.GetOptions()
    if not options.HasField("idempotency_level"):
        return None
    return options.idempotency_level


@cache
def idempotent_methods(service_full_name: str) -> tuple[str, ...]:
    """Methods of a service that are safe to retry (NO_SIDE_EFFECTS or IDEMPOTENT).

    Raises KeyError for a service the contract does not have, so a misspelt name fails loudly
    instead of silently turning retries off.
    """
    service = services()[service_full_name]
    return tuple(method.name for method in service.methods
                 if idempotency_level(method) in RETRY_SAFE_LEVELS)
