"""The sweep: Ray Tune + Optuna studies of Ray Train / Tune trials, recorded in MLflow.

The only package that imports ray.tune, ray.train or MLflow's run machinery; the training loop,
model and data layers know nothing of it. Modules, from the command line inward:

    cli          the sweep scripts' flags -> spec.SweepSpec
    driver       run_sweep: checks, data, Ray, the stages, the report
    stages       stage 1 (base model) and stage 2 (one study per fraction, seed and mode)
    runs         MLflow run hierarchy and the resume state (state.SweepState)
    study        Study: one study, and every name derived from it
    space        the search space per mode (Optuna define-by-run; no Ray)
    search       one Tune study of it with ASHA (run_study)
    resources    per-trial resources and how many trials fit side by side
    executors    the `train` (TorchTrainer per trial) and `tune` (in the Tune actor) executors
    worker       the trial body both executors run
    trial_logger Tune callback: every trial as an MLflow run, logged from the driver
    results      best completed trial, importances, champion registration
    report       `tl report`: figure, tables, summary.json
    tracking     MLflow conventions: tags, lineage, artifacts
    deadline     --time-budget as a Tune stopper
    placement    placement groups Ray Train leaves behind, released when a study ends
"""
