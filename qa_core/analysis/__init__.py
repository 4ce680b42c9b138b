"""Analysis: plots, HTML reports, progressive-difficulty probes and run comparison."""
