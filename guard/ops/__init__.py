"""Operator processes: what runs beside the application, never inside it.

Alert and report delivery (``dispatch``), detection passes, the metrics exporter, daily reports,
rule rollout and the job runner. They may use the runtime library (``guard.*`` top level); the
runtime never imports them.
"""
