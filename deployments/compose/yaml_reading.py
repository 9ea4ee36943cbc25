"""A compose file's YAML read safely: anchors, aliases and merge keys (`<<: *default`) are
accepted, as people write them to share a service's settings; a "billion laughs" is not. A few
hundred bytes of nested aliases expand into millions of values, and reading them would take the
worker or the panel down, so the node graph is composed first and its expanded size counted
(each node once, memoised) before any value is built."""
import yaml

from deployments.compose.project import ComposeError

MAX_YAML_EVENTS = 50_000  # a file of 256 KiB has fewer; bounds the work of composing one
MAX_EXPANDED_VALUES = 100_000  # what the file holds once every alias is written out


def read_yaml(text: str):
    """The document, its aliases expanded; ComposeError if it is not YAML or expands too far."""
    try:
        _check_events(text)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_expanded_size(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        raise ComposeError([f"the compose file is not valid YAML: {error}"]) from None


def _check_events(text: str) -> None:
    for count, _ in enumerate(yaml.parse(text, Loader=yaml.SafeLoader)):
        if count > MAX_YAML_EVENTS:
            raise ComposeError(["the compose file has too many values"])


def _check_expanded_size(root: yaml.Node) -> None:
    """Counts the values the document holds with every alias written out. An alias is the same
    node object as its anchor, so each node's size is computed once: the count takes time in
    the number of nodes, not in the (possibly exponential) expanded size."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise _refusal(node, "an anchor is used inside itself (a recursive alias)")
        in_progress.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key_node) + size(value_node) for key_node, value_node in node.value)
        in_progress.discard(key)
        if total > MAX_EXPANDED_VALUES:
            raise _refusal(node, f"with its aliases written out, the file holds more than {MAX_EXPANDED_VALUES:,} "
                                 "values (nested aliases multiply); write shared settings once per service")
        sizes[key] = total
        return total

    size(root)


def _refusal(node: yaml.Node, reason: str) -> ComposeError:
    return ComposeError([f"line {node.start_mark.line + 1}: {reason}"])
