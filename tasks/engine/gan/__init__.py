"""GAN Dissection (Bau, Zhu, Strobelt, Zhou et al., ICLR 2019) on the engine's own data.

Generators and segmenters (models), their trainers (train, segmenter), dissection of
generator units in the classifier dissection's file formats (dissect), interventions and
causal effects (intervene), the single-image edit for a paint page (edit), and the offline
demo report (demo). Import the submodules; this package file stays import-light.
"""
