"""Agents: a name, a system prompt and a fallback chain of provider/model links.

The shape is the seed plan's: `supported_providers` ordered by `priority` (1 = primary), a
`default_provider` whose best link goes first, a `cost_tier` for display, and the legacy
single `provider` + `model` pair (an agent with only those has a one-link chain).

An agent may declare default `tools` (functions its answers may call: the caller runs them, llmrelay
relays the calls) and an `output_format` (`json_object`, or `json_schema` with a schema); a request's
own tools are added to the agent's (one of the same name replaces the agent's), and a request's own
output format replaces the agent's.

An agent of `kind = "embedding"` makes vectors (`/v1/embeddings`, `Relay.embed`) instead of answers: its
links must all be embedding models the catalog knows, of one dimension (a chain falls back only between
models whose vectors can share an index), or all able to give its `dimensions`; it has no system prompt,
tools or output format.  A chat agent's links are not embedding models.  Either mistake fails at load,
naming the links.

`LLMRELAY_AGENTS_FILE` names a TOML file of `[[agents]]` tables that add to the built-in
agents or replace one with the same id.  A bad file fails with the file, the agent and the
field named: ``agents.toml: agent 'support-agent': supported_providers[1].provider: unknown
provider 'opneai' (known: anthropic, google, ollama, openai, openrouter)``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .catalog import facts
from .content import TOOL_NAME, OutputFormat, Tool
from .providers.registry import known_provider
from .types import ConfigError, Link

CostTier = Literal["free", "low", "medium", "high"]
AgentKind = Literal["chat", "embedding"]
_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class ProviderOption(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    model: str = Field(min_length=1, max_length=200)
    priority: int = Field(ge=1, le=100)
    max_retries: int | None = Field(None, ge=0, le=10)

    @field_validator("provider")
    @classmethod
    def _provider_known(cls, v: str) -> str:
        return known_provider(v)


class AgentTool(BaseModel):
    """A function the agent's answers may call (the caller runs it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=TOOL_NAME.pattern)
    description: str = ""
    parameters: dict = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON Schema of the arguments."""
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _an_object_schema(cls, v: dict) -> dict:
        if v.get("type", "object") != "object":
            raise ValueError("a tool's parameters must be a JSON Schema of type object")
        return v

    def tool(self) -> Tool:
        return Tool(self.name, self.description, self.parameters, self.strict)


class AgentOutput(BaseModel):
    """The agent's answers are JSON: any object, or one that fits `schema`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["json_object", "json_schema"]
    name: str = Field("response", pattern=TOOL_NAME.pattern)
    schema_: dict | None = Field(None, alias="schema")
    strict: bool | None = None

    @model_validator(mode="after")
    def _schema_for_json_schema(self) -> AgentOutput:
        if (self.type == "json_schema") != (self.schema_ is not None):
            raise ValueError("json_schema takes a schema, json_object none")
        return self

    def format(self) -> OutputFormat:
        return OutputFormat(self.type, self.schema_, self.name, None, self.strict)


class Agent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    system_prompt: str = ""
    cost_tier: CostTier = "medium"
    default_provider: str | None = None
    supported_providers: tuple[ProviderOption, ...] = ()
    provider: str | None = None
    """Legacy: the single provider of an agent that predates fallback chains."""
    model: str | None = None
    """Legacy: the single model of an agent that predates fallback chains."""
    tools: tuple[AgentTool, ...] = ()
    output_format: AgentOutput | None = None
    kind: AgentKind = "chat"
    """`embedding`: the agent makes vectors, not answers."""
    dimensions: int | None = Field(None, ge=1, le=65_536)
    """An embedding agent's vectors' length, when its models are to give shorter vectors than their own."""

    @field_validator("default_provider", "provider")
    @classmethod
    def _provider_known(cls, v: str | None) -> str | None:
        return known_provider(v) if v is not None else None

    @model_validator(mode="after")
    def _chain_is_usable(self) -> Agent:
        if not self.supported_providers and not (self.provider and self.model):
            raise ValueError("needs supported_providers, or the legacy provider and model")
        if (self.provider is None) != (self.model is None):
            raise ValueError("the legacy provider and model go together")
        seen: dict[int, int] = {}
        for i, opt in enumerate(self.supported_providers):
            if opt.priority in seen:
                raise ValueError(f"supported_providers[{i}]: priority {opt.priority} is already used "
                                 f"by supported_providers[{seen[opt.priority]}]")
            seen[opt.priority] = i
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise ValueError("tools: each tool needs a name of its own")
        if self.default_provider and self.supported_providers and self.default_provider not in {
                o.provider for o in self.supported_providers}:
            raise ValueError(f"default_provider {self.default_provider!r} is not among supported_providers")
        if self.kind == "embedding":
            _check_embedding_agent(self)
        else:
            _check_chat_agent(self)
        return self

    @property
    def options(self) -> list[ProviderOption]:
        """The chain as options: default provider's best link first, then by priority."""
        if not self.supported_providers:
            return [ProviderOption(provider=self.provider, model=self.model, priority=1)]  # type: ignore
        ordered = sorted(self.supported_providers, key=lambda o: o.priority)
        if self.default_provider:
            first = next(o for o in ordered if o.provider == self.default_provider)
            ordered.remove(first)
            ordered.insert(0, first)
        return ordered

    @property
    def links(self) -> list[Link]:
        return [Link(o.provider, o.model, o.max_retries) for o in self.options]

    @property
    def primary(self) -> Link:
        return self.links[0]


def _links(agent: Agent) -> list[tuple[str, ProviderOption]]:
    """Each link with where the agent declares it."""
    if not agent.supported_providers:
        return [("model", agent.options[0])]
    return [(f"supported_providers[{i}]", o) for i, o in enumerate(agent.supported_providers)]


def _check_chat_agent(agent: Agent) -> None:
    if agent.dimensions is not None:
        raise ValueError('dimensions: only an agent of kind = "embedding" has them')
    for where, o in _links(agent):
        f = facts(o.provider, o.model)
        if f is not None and f.dimensions is not None:
            raise ValueError(f'{where}: {o.provider}/{o.model} is an embedding model: a chat agent cannot answer '
                             f'with it (an agent of kind = "embedding" makes vectors)')


def _check_embedding_agent(agent: Agent) -> None:
    """Embedding models the catalog knows, of one dimension (or all able to give the agent's)."""
    if agent.system_prompt or agent.tools or agent.output_format is not None:
        raise ValueError("an embedding agent has no system_prompt, tools or output_format")
    sizes: dict[str, int] = {}
    for where, o in _links(agent):
        f = facts(o.provider, o.model)
        if f is None or f.dimensions is None:
            raise ValueError(f"{where}: {o.provider}/{o.model} is not an embedding model llmrelay knows")
        if agent.dimensions is not None and not f.gives(agent.dimensions):
            can = f"{f.dimensions} or fewer" if f.shortens else f"only {f.dimensions}"
            raise ValueError(f"{where}: {o.provider}/{o.model} cannot give the agent's {agent.dimensions}-dimensional "
                             f"vectors (it gives {can})")
        sizes[f"{o.provider}/{o.model}"] = f.dimensions
    if agent.dimensions is None and len(set(sizes.values())) > 1:
        links = ", ".join(f"{link} gives {n}" for link, n in sizes.items())
        raise ValueError(f"the links' vectors differ in dimension ({links}): a chain falls back only between models "
                         "of one dimension (or set dimensions to a length every link can give)")


def _agent(id: str, name: str, description: str, system_prompt: str, cost_tier: CostTier,
           *chain: tuple[str, str]) -> Agent:
    return Agent(id=id, name=name, description=description, system_prompt=system_prompt, cost_tier=cost_tier,
                 default_provider=chain[0][0],
                 supported_providers=tuple(ProviderOption(provider=p, model=m, priority=i + 1)
                                           for i, (p, m) in enumerate(chain)))


BUILTIN_AGENTS: tuple[Agent, ...] = (
    _agent("general-agent", "General Assistant",
           "Answers anything; falls back across every provider down to a local model.",
           "You are a helpful, precise assistant. Answer clearly and say when you are unsure.",
           "medium",
           ("anthropic", "claude-3-5-sonnet-20241022"), ("openai", "gpt-4o"), ("google", "gemini-2.0-flash"),
           ("openrouter", "meta-llama/llama-3.1-70b-instruct"), ("ollama", "mistral")),
    _agent("web-dev-agent", "Web Developer",
           "Builds and debugs web front ends and back ends: HTML, CSS, JavaScript, Python, APIs.",
           "You are a senior web developer. Give working code, explain trade-offs briefly, "
           "and point out security problems you notice.",
           "medium",
           ("anthropic", "claude-3-5-sonnet-20241022"), ("google", "gemini-2.0-flash"),
           ("ollama", "mistral")),
    _agent("code-review-agent", "Code Reviewer",
           "Reviews diffs and code for bugs, security issues and readability.",
           "You are a meticulous code reviewer. List concrete problems first (bugs, security, "
           "concurrency), then smaller suggestions. Quote the lines you mean.",
           "high",
           ("openai", "gpt-4o"), ("anthropic", "claude-3-5-sonnet-20241022"),
           ("openrouter", "meta-llama/llama-3.1-70b-instruct")),
    _agent("summarizer-agent", "Summarizer",
           "Condenses long text into short, faithful summaries. Cheap and fast.",
           "You summarize faithfully and briefly. Keep names, numbers and decisions; drop filler.",
           "low",
           ("google", "gemini-2.0-flash"), ("openai", "gpt-4o-mini"),
           ("anthropic", "claude-3-5-haiku-20241022"), ("ollama", "llama3.2")),
    _agent("local-agent", "Local Assistant",
           "Runs only on the local Ollama: free, private, works offline.",
           "You are a helpful assistant running locally.",
           "free",
           ("ollama", "mistral"), ("ollama", "llama3.2")),
)


def load_agents(agents_file: Path | None = None) -> dict[str, Agent]:
    """The built-in agents, with those of `agents_file` added or replacing by id."""
    agents = {a.id: a for a in BUILTIN_AGENTS}
    if agents_file is not None:
        for agent in read_agents_file(agents_file):
            agents[agent.id] = agent
    return agents


def read_agents_file(path: Path) -> list[Agent]:
    name = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"LLMRELAY_AGENTS_FILE: {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"LLMRELAY_AGENTS_FILE: {path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None
    extra = set(data) - {"agents"}
    if extra:
        raise ConfigError(f"{name}: unknown top-level key {sorted(extra)[0]!r} (expected [[agents]] tables)")
    tables = data.get("agents", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{name}: 'agents' must be an array of tables ([[agents]])")
    agents: list[Agent] = []
    ids: set[str] = set()
    for i, table in enumerate(tables):
        label = f"agent {table.get('id')!r}" if isinstance(table.get("id"), str) else f"agents[{i}]"
        try:
            agent = Agent.model_validate(table)
        except ValidationError as exc:
            raise ConfigError(f"{name}: {label}: {_describe(exc)}") from None
        if agent.id in ids:
            raise ConfigError(f"{name}: {label}: id is defined twice in this file")
        ids.add(agent.id)
        agents.append(agent)
    return agents


def _describe(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = ""
    for part in err["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "missing required field"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field"
    return f"{loc}: {msg}" if loc else msg
