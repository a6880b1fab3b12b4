"""Measurements collected by the runner, grouped by scenario and case."""

import json
from dataclasses import dataclass, field

import _stats


@dataclass
class CaseResult:
    scenario: str
    case: object            # the registry Case
    size: int
    runs: dict = field(default_factory=dict)     # impl key -> [worker result dicts]
    errors: dict = field(default_factory=dict)   # impl key -> [messages]
    skipped: dict = field(default_factory=dict)  # impl key -> reason it was not run

    @property
    def label(self):
        return self.case.label

    def values(self, impl, metric=None):
        metric = metric or ('seconds' if impl == 'floor' else self.case.metric)
        return [run[metric] for run in self.runs.get(impl, []) if metric in run]

    def median(self, impl, metric=None):
        return _stats.median(self.values(impl, metric))

    def to_json(self):
        return {'case': self.label, 'size': self.size, 'metric': self.case.metric,
                'module': self.case.module, 'params': self.case.params,
                'median': {impl: self.median(impl) for impl in self.runs},
                'runs': self.runs, 'errors': self.errors, 'skipped': self.skipped}


class ScenarioResults:
    """The cases of one scenario, looked up by label (what targets read).

    Cases may share a label (one shape at several sizes); a look-up by label
    finds the first of them.
    """

    def __init__(self, scenario, cases):
        self.scenario = scenario
        self.cases = cases
        self._by_label = {}
        for case in cases:
            self._by_label.setdefault(case.label, case)

    def median(self, label, impl):
        case = self._by_label.get(label)
        return case.median(impl) if case else None

    def runs(self, label, impl):
        case = self._by_label.get(label)
        return case.runs.get(impl, []) if case else []


def dump(path, header, scenario_results, targets):
    data = dict(header)
    data['scenarios'] = [{'name': sr.scenario.name, 'summary': sr.scenario.summary,
                          'cases': [case.to_json() for case in sr.cases]}
                         for sr in scenario_results]
    data['targets'] = [{'scenario': name, 'what': t.what, 'value': t.value, 'ok': t.ok}
                       for name, t in targets]
    with open(path, 'w') as out:
        json.dump(data, out, indent=1, default=str)
        out.write('\n')
