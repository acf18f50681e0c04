"""Relay's benchmark (issue 5): `python -m bench [COMMAND]`, see bench.__main__.

Modules, in the order a run uses them:
  config     the settings (environment variables), results    the result document
  tools      nginx and wrk, installed if missing              wrk          one wrk run
  processes  starting and stopping children                   postgres     throwaway databases
  servers    the stub, the baselines, Relay instances         targets      what wrk measures
  phases     the main, auth and memory phases                 report       ratios, goals, tables
  run        the `run` command                                cost, inprocess, profile, load
  relay_api  the only imports of Relay's code                 baseline/    the baseline apps
"""
