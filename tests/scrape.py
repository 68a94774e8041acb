"""What GET /metrics says, read with prometheus_client's own parser."""

from prometheus_client.parser import text_string_to_metric_families


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples named name whose labels include labels (0: none)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def label_values(text: str, name: str, label: str) -> set[str]:
    """The values a label takes in the samples named name."""
    return {
        sample.labels[label]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }
