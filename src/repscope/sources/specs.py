"""Help texts for model and dataset specs (no heavy imports: the CLI reads them at start-up)."""

MODEL_HELP = ("minilm, minilm-st, resnet20/32/44/56, digits-mlp:SEED, a model folder, a digits-MLP .safetensors or a "
              "`repscope learn train` checkpoint")
DATA_HELP = ("templates[:N], shapes[:N], digits/iris/wine/breast_cancer, FILE.tsv, FILE.npz or "
             "shared:text/sst2/dev.tsv; @N keeps N")
