#!/usr/bin/env bash
# Regenerate the data sets of docs/results.md into data/prepared/ (not committed; about 60 MB).
# Needs ../shared/data (GRCh37 chr20, BRCA SNVs, TAp73alpha peaks); runs in about 2 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/data}
OUT=data/prepared
MIX=SBS1=0.1,SBS2=0.2,SBS3=0.3,SBS5=0.2,SBS13=0.2
simulate() {  # simulate <dir> <motif id> <threshold>: COSMIC mix + motif hotspots, as the demo data
  seqmodel-simulate --fasta "$1/regions.fa.gz" --signatures data/COSMIC_v3_SBS_GRCh37.tsv --mix "$MIX" \
    --mean-rate 5e-4 --genomes 100 --seed 0 \
    --motifs data/jaspar2024_selected.jaspar --motif-id "$2" --motif-threshold "$3" --motif-factor 20 \
    --out-vcf "$1/simulated.vcf.gz" --out-rate "$1/true_rate.bedgraph.gz" --out-hits "$1/hits.bed" --validate
}

# 1. The demo CTCF set (simulated mutations in data/), split by 1-Mb genome blocks.
seqmodel-prepare --sequences data/ctcf_demo.fa.gz --split-block 1000000 --out $OUT/ctcf

# 2. TAp73alpha peaks + GC-matched chr20 background, split by region; TP53 (MA0106.3) hotspots at
#    10 bits (35 % of the peaks hold a hit, 0.5 % of the background windows).
seqmodel-prepare --sequences "$SHARED/bench/p73_peaks_vs_chr20_bg.fa.gz" --split-block 1000000 --out $OUT/p73
simulate $OUT/p73 MA0106.3 10

# 3. chr20 36-44 Mb in 1-kb windows, split by 500-kb blocks; the real BRCA SNVs REF-checked and
#    kept; CTCF (MA0139.1) hotspots at 12 bits as in the demo data.
seqmodel-prepare --genome "$SHARED/genome/GRCh37_chr20.fa.gz" --tile 20:36000000-44000000 --tile-size 1000 \
  --split-block 500000 --val-fraction 0.1 --test-fraction 0.2 \
  --mutations "$SHARED/bench/brca100_chr20_snvs.tsv.gz" --out $OUT/chr20
simulate $OUT/chr20 MA0139.1 12
