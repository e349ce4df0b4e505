"""The interactive web app (``python app.py``): one tab per kind of exported model.

::

    --models DIR ──catalog──▶ exports by task ──models (loaded once, shared)──▶ actions (numpy in, numpy out)
                                                                              ▲
    browser ──gradio (ui)──▶ upload / canvas / sliders ──────────────────────┘

:mod:`catalog` finds the exports and says which tab shows each; :mod:`models` loads them once per process;
:mod:`actions` holds what each tab computes, with no web framework in it (tested without a browser);
:mod:`labelmaps` edits SPADE label maps; :mod:`ui` is the gradio page.
"""
