"""Request-scoped dependencies as typed aliases (routes read like domain code)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from dicom_emulator.api.versions import parse_version
from dicom_emulator.errors import NotFoundError
from dicom_emulator.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ApiContext:
    """Version and URL facts of one request."""

    segment: str
    major: int
    # "{scheme}://{host}/{version}": RetrieveURLs and hrefs are absolute (azure-behaviour §2.4).
    base_url: str
    # Host without port, for "Warning: 299 {host}: ..." (azure-behaviour §1.4).
    warning_host: str


# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a thread pool, a
# thread hop per dependency per request that cost more than the work they do.
async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def get_api(request: Request, version: str) -> ApiContext:
    return api_context(request, version)


def api_context(request: Request, version: str) -> ApiContext:
    """The version and URL facts of ``request`` (the ApiDep dependency, also called by the partition ones)."""
    parsed = parse_version(version)
    if parsed is None:
        # Unversioned or unknown first segments are simply not routes (the middleware 400s v3 etc).
        raise NotFoundError("")
    runtime: Runtime = request.app.state.runtime
    root = runtime.settings.public_url or _request_root(request)
    return ApiContext(
        segment=version,
        major=parsed.major,
        base_url=f"{root}/{version}",
        warning_host=request.url.hostname or "localhost",
    )


_DEFAULT_PORTS = {"http": 80, "https": 443}


# Request roots by what they are made of: building one through Starlette's URL objects cost more than the rest of
# a dependency. Bounded: a client can send any Host header.
_ROOTS: dict[tuple[object, ...], str] = {}
_ROOTS_LIMIT = 256


def _request_root(request: Request) -> str:
    scope = request.scope
    server = scope.get("server")
    # ASGI servers give ``server`` as a tuple, some test transports as a list: keyed as a tuple either way.
    key = (
        scope.get("scheme"),
        request.headers.get("host", ""),
        tuple(server) if server else None,
        scope.get("root_path", ""),
    )
    root = _ROOTS.get(key)
    if root is None:
        root = _build_request_root(request)
        if len(_ROOTS) < _ROOTS_LIMIT:
            _ROOTS[key] = root
    return root


def _build_request_root(request: Request) -> str:
    """``{scheme}://{host}[:port]{root_path}`` as the client addressed this server.

    Some clients (dicomweb-client through requests) send ``Host`` without the port; every RetrieveURL
    built from it would then point at port 80. When the Host header has no port, the port this server
    actually listens on is added (unless it is the scheme's default). Behind a proxy, ``--public-url``
    says what clients see instead.
    """
    root = str(request.base_url).rstrip("/")
    host = request.headers.get("host", "")
    server = request.scope.get("server")
    if not host or host.rpartition("]")[2].count(":") or server is None or server[1] is None:
        return root
    port = int(server[1])
    if port == _DEFAULT_PORTS.get(request.url.scheme):
        return root
    scheme, _, rest = root.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority}:{port}{slash}{path}"


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ApiDep = Annotated[ApiContext, Depends(get_api)]

# The path parameter of the partition prefix (api/__init__.py mounts partition-aware routers twice).
PARTITION_PARAM = "partitionName"


@dataclass(frozen=True, slots=True)
class PartitionContext:
    """The partition a request works in, and the base of the URLs it returns.

    ``base_url`` is ``{scheme}://{host}/{version}[/partitions/{name}]``: RetrieveURLs and workitem locations carry
    the partition when the request had one (azure-behaviour §14.4); operation hrefs use ``ApiContext.base_url``.
    """

    key: int
    name: str
    base_url: str


async def resolve_partition(request: Request, api: ApiContext, runtime: Runtime, *, create: bool) -> PartitionContext:
    """The partition of ``request`` (its ``partitionName`` path parameter, else the default), created if asked."""
    name: str | None = request.path_params.get(PARTITION_PARAM)
    record = await runtime.partitions.resolve(name, create=create)
    base_url = api.base_url if name is None else f"{api.base_url}/partitions/{name}"
    return PartitionContext(key=record.key, name=record.name, base_url=base_url)


# The partition dependencies take the version and the runtime themselves rather than through ApiDep and RuntimeDep:
# FastAPI solves a sub-dependency's own parameters again even when its value is cached, and those nested solves
# cost more than the work (the route's own ApiDep and RuntimeDep are still solved once each).
async def get_partition(request: Request, version: str) -> PartitionContext:
    """An existing partition (azure-behaviour §14.1: lookup; an unknown name is 400)."""
    return await resolve_partition(request, api_context(request, version), request.app.state.runtime, create=False)


async def get_or_create_partition(request: Request, version: str) -> PartitionContext:
    """STOW and workitem create: an unknown partition is created (azure-behaviour §14.1)."""
    return await resolve_partition(request, api_context(request, version), request.app.state.runtime, create=True)


PartitionDep = Annotated[PartitionContext, Depends(get_partition)]
NewPartitionDep = Annotated[PartitionContext, Depends(get_or_create_partition)]


@dataclass(frozen=True, slots=True)
class RouteContext:
    """What a partition-aware route needs of its request: the version facts, the runtime and the partition."""

    api: ApiContext
    runtime: Runtime
    partition: PartitionContext


# One dependency instead of ApiDep, RuntimeDep and a partition one, on the hottest routes (STOW, QIDO): FastAPI solves
# each dependency, and the version path parameter of each, on every request, and three solves cost more than the
# work they do (~15 % of a one-hit QIDO's time in the event loop, benchmarks/README.md session 9).
async def route_context(request: Request, version: str, *, create: bool) -> RouteContext:
    api = api_context(request, version)
    runtime: Runtime = request.app.state.runtime
    return RouteContext(api, runtime, await resolve_partition(request, api, runtime, create=create))


async def get_route_context(request: Request, version: str) -> RouteContext:
    """:data:`PartitionDep` with the ApiContext and Runtime it was resolved with."""
    return await route_context(request, version, create=False)


async def get_new_route_context(request: Request, version: str) -> RouteContext:
    """:data:`NewPartitionDep` with the ApiContext and Runtime it was resolved with."""
    return await route_context(request, version, create=True)


RouteDep = Annotated[RouteContext, Depends(get_route_context)]
NewRouteDep = Annotated[RouteContext, Depends(get_new_route_context)]


def accept_header(request: Request) -> str | None:
    """All Accept header lines as one list (a client may send several lines)."""
    values = request.headers.getlist("accept")
    return ", ".join(values) if values else None


def warning_header(api: ApiContext, message: str) -> str:
    return f'299 {api.warning_host}: "{message}"'
