"""MONAI Deploy application of D²4FAD (extra ``[deploy]``): ``python -m monai_d2fad.deploy -i IN -m MODEL -o OUT``.

``inputs`` and ``report`` need only the core package; ``operators`` and ``app`` import the MONAI Deploy App SDK.
"""
