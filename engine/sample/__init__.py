"""Generated facts with known findings: the sample organisation and the building blocks of the benchmark's
synthetic province (``bench/generate.py``).

Not part of the interchange format (:mod:`facts` holds only models, readers, writers and the store): this is
what ``partyrules sample`` writes, what the tests and the demo import, and what the benchmark scales up.

- :mod:`engine.sample.organisation` — the sample organisation (省文联, 2017) and its expected findings;
- :mod:`engine.sample.registry`, :mod:`~engine.sample.meetings`, :mod:`~engine.sample.events` — one
  department's orgs and people, its meetings, its other facts;
- :mod:`engine.sample.lapses` — where a department departs from the rules (planned or drawn at rates);
- :mod:`engine.sample.expect` — the findings a correct engine reports, derived from the generated facts;
- :mod:`engine.sample.text` — Chinese names, org names, minutes and the similarity measure.
"""

from engine.sample.organisation import department_facts, sample_expected, sample_facts, write_sample

__all__ = ["department_facts", "sample_expected", "sample_facts", "write_sample"]
