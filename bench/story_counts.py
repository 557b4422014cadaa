"""Story-count errors of a clustering against the truth: what pairwise precision hides.

Pairwise precision barely moves when one story swallows a dozen small ones (few pairs), yet
the trend detectors then count one story where there were thirteen. So the benches report:

* **absorbed**: the share of true stories whose first article joined a cluster that already
  held another true story (the story is lost to the count);
* **unmerged**: the share of copies (a true story's articles after its first) left outside
  the cluster of their story's first article (a copy counted as a story of its own).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StoryCounts:
    stories: int
    absorbed: int
    copies: int
    unmerged: int

    @property
    def absorbed_share(self) -> float:
        return self.absorbed / self.stories if self.stories else 0.0

    @property
    def unmerged_share(self) -> float:
        return self.unmerged / self.copies if self.copies else 0.0

    def row(self) -> str:
        return (
            f"stories absorbed {self.absorbed}/{self.stories} ({self.absorbed_share:.2%}), "
            f"copies unmerged {self.unmerged}/{self.copies} ({self.unmerged_share:.2%})"
        )


def story_counts(articles: Sequence[tuple[Hashable, Hashable]]) -> StoryCounts:
    """``articles``: (true story, predicted cluster) of each stored article, in the order
    they were stored."""
    first_cluster: dict[Hashable, Hashable] = {}
    owner: dict[Hashable, Hashable] = {}  # cluster → the true story of its first article
    absorbed = copies = unmerged = 0
    for truth, cluster in articles:
        if truth not in first_cluster:
            first_cluster[truth] = cluster
            if cluster in owner:
                absorbed += 1
            else:
                owner[cluster] = truth
        else:
            copies += 1
            unmerged += cluster != first_cluster[truth]
    return StoryCounts(len(first_cluster), absorbed, copies, unmerged)
