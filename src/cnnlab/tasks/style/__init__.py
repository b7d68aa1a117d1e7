"""Neural style transfer (Gatys et al.; the course's costs): an image with one picture's content and another's style.

Not a trained-model task: nothing is learnt that a later command loads, so it has no ``TASKS`` entry
(no checkpoint to predict, export or serve with). ``cnnlab style`` runs it and writes a run folder.
Files: ``costs`` (the course's formulas), ``features`` (named layers of a backbone), ``transfer``
(the optimisation, coarse to fine), ``pipeline`` (images in, run folder and page out).
"""
