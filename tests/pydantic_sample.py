"""pydantic models in an RPC interface, and an implementation of it (used by
tests/test_pydantic.py and tests/typing/test_pydantic_stubs.py).

The models speak camelCase on the wire (``alias_generator=to_camel``), as a TypeScript peer
writes its objects, and accept their Python names too.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from capnweb import RpcStub, RpcTarget
from capnweb.interface import camel_case, rpc_interface, rpc_method, rpc_property

JOINED = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


class Model(BaseModel):
    """camelCase keys on the wire; Python names accepted as well."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True
    )


class Role(enum.Enum):
    ADMIN = "admin"
    MEMBER = "member"


class Address(Model):
    """Where a user lives."""

    street: str
    zip_code: str


class Profile(Model):
    """What anyone may know about a user."""

    name: str
    age: int = Field(ge=0)
    joined: datetime = JOINED
    avatar: bytes = b""
    address: Address | None = None
    past_addresses: list[Address] = []
    tags: list[str] = []
    role: Role = Role.MEMBER
    id: uuid.UUID = uuid.UUID(int=0)


class Badge(Model):
    """A label and a capability."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    label: str
    counter: RpcStub


@rpc_interface(names=camel_case)
class User(Protocol):
    """One user of the directory."""

    @property
    @rpc_property
    def profile(self) -> Profile:
        """The user's profile."""

    @rpc_method
    async def move(self, to: Address) -> Profile:
        """Change the user's address; returns the updated profile."""


@rpc_interface(names=camel_case)
class Directory(Protocol):
    """A directory of users described by pydantic models."""

    @rpc_method
    async def register(self, profile: Profile) -> Profile:
        """Add (or replace) a user; returns the stored profile."""

    @rpc_method
    async def user(self, name: str) -> User:
        """The user called ``name``."""

    @rpc_method
    async def find(self, name: str) -> Profile | None:
        """The profile of ``name``, if there is one."""

    @rpc_method
    async def everyone(self) -> list[Profile]:
        """Every profile, by name."""

    @rpc_method
    async def badge(self, label: str) -> Badge:
        """A badge holding a new counter."""


class Counter(RpcTarget):
    """A plain capability to put in a model."""

    def __init__(self) -> None:
        self.value = 0

    def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value


class UserImpl(RpcTarget, User):
    def __init__(self, directory: DirectoryImpl, name: str) -> None:
        self._directory = directory
        self._name = name

    @property
    def profile(self) -> Profile:
        return self._directory.profiles[self._name]

    async def move(self, to: Address) -> Profile:
        old = self.profile
        moved = old.model_copy(
            update={
                "address": to,
                "past_addresses": [*old.past_addresses, *([old.address] if old.address else [])],
            }
        )
        self._directory.profiles[self._name] = moved
        return moved


class DirectoryImpl(RpcTarget, Directory):
    def __init__(self) -> None:
        self.profiles: dict[str, Profile] = {
            "ann": Profile(
                name="ann",
                age=36,
                avatar=b"\x00\xff",
                address=Address(street="1 Main St", zip_code="12345"),
                tags=["admin"],
                role=Role.ADMIN,
                id=uuid.UUID(int=1),
            )
        }

    async def register(self, profile: Profile) -> Profile:
        assert isinstance(profile, Profile)  # validated before this runs
        self.profiles[profile.name] = profile
        return profile

    async def user(self, name: str) -> User:
        if name not in self.profiles:
            raise KeyError(name)
        return UserImpl(self, name)

    async def find(self, name: str) -> Profile | None:
        return self.profiles.get(name)

    async def everyone(self) -> list[Profile]:
        return [self.profiles[name] for name in sorted(self.profiles)]

    async def badge(self, label: str) -> Badge:
        return Badge(label=label, counter=RpcStub(Counter()))
