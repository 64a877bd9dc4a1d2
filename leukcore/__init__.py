"""leukcore: a reproducibility study of five deep-learning leukemia papers.

The package in the order data flows, each floor importing only the floors before it
(``tests/test_layout.py``): ``files``; ``data``; ``transforms`` (public face ``filters``);
``models``; ``engine`` (public face ``losses``); ``metrics``; ``runs``; ``evaluation``; ``audits``;
``bench``, ``conclusions``; ``book``; ``gpu_lease``; ``cli``. ``import leukcore`` imports nothing
heavy. DEVELOPERS.md lists every module.
"""
