"""Making view sets: parameters, the request, the pipeline, the model service, image preparation,
segmentation and the checkpoint (finding and downloading it).

Imports nothing at package import: the add-on imports `checkpoints` and `download` from here
with the standard library only.
"""
