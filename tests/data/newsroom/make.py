#!/usr/bin/env python3
"""Write es-2019-04-vs-2016-06.json: the imported definition of Spain's
April 2019 election (tests/data/elections/es-2019-04/election.json,
unchanged) with the previous election (June 2016, its imported definition
and official results) and each coalition's predecessors (lineage, an
editorial choice: see README.md for why each one), and the tile map of
Spain's 52 provinces.  Run from this directory; the output is
deterministic.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "elections", "es-2019-04", "election.json")

# 2019 group code -> 2016 group codes (see README.md, "Lineage").
LINEAGE = {
    "000096": ["000077"],            # PSOE <- PSOE
    "000083": ["000068"],            # PP <- PP (UPN-PP in Navarre included)
    "000022": ["000013"],            # Cs <- C's
    "000077": ["000059", "000055"],  # Unidas Podemos <- Unidos Podemos,
                                     #   Compromis-Podemos-EUPV
    "000117": ["000094"],            # VOX <- VOX
    "000037": ["000025"],            # ERC-Sobiranistes <- ERC-CatSi
    "000032": ["000022"],            # ECP-Guanyem <- En Comu Podem
    "000049": ["000010"],            # JxCat-Junts <- CDC
    "000027": ["000016"],            # EAJ-PNV <- EAJ-PNV
    "000054": ["000041"],            # PACMA <- PACMA
    "000033": ["000023"],            # EH Bildu <- EH Bildu
    "000075": ["000056"],            # En Comun-Unidas Podemos <- En Marea
    "000015": ["000007"],            # CCa-PNC <- CCa-PNC
    "000012": ["000005"],            # BNG <- BNG-NOS
    "000104": ["000081"],            # Recortes Cero <- Recortes Cero
    "000043": ["000030"],            # Geroa Bai <- Geroa Bai
    "000063": ["000049"],            # PCPE <- PCPE
    "000057": ["000044"],            # PCOE <- PCOE
}

# [column, row] of each province (INE code) in a hand-made tile map of
# Spain: roughly where it lies, Canaries and Ceuta/Melilla set apart.
TILES = {
    "15": [0, 0], "27": [1, 0], "33": [2, 0], "39": [3, 0], "48": [4, 0],
    "20": [5, 0], "31": [6, 0], "22": [7, 0], "25": [8, 0], "17": [9, 0],
    "36": [0, 1], "32": [1, 1], "24": [2, 1], "34": [3, 1], "09": [4, 1],
    "01": [5, 1], "26": [6, 1], "50": [7, 1], "08": [8, 1], "43": [9, 1],
    "49": [1, 2], "47": [2, 2], "40": [3, 2], "42": [4, 2], "19": [5, 2],
    "44": [6, 2], "12": [7, 2], "37": [1, 3], "05": [2, 3], "28": [3, 3],
    "16": [4, 3], "46": [6, 3], "07": [9, 3], "10": [1, 4], "45": [2, 4],
    "13": [3, 4], "02": [4, 4], "03": [6, 4], "06": [1, 5], "14": [2, 5],
    "23": [3, 5], "30": [4, 5], "21": [0, 6], "41": [1, 6], "29": [2, 6],
    "18": [3, 6], "04": [4, 6], "11": [1, 7], "51": [2, 8], "52": [4, 8],
    "38": [0, 9], "35": [1, 9],
}

with open(SRC) as f:
    d = json.load(f)
d["description"] = ("Spain, April 2019, compared with June 2016 "
                    "(tests/data/newsroom/make.py; lineage in README.md)")
d["previous"] = {"definition": "../elections/es-2016-06/election.json",
                 "results": "../elections/es-2016-06/results.json"}
for c in d["coalitions"]:
    if c["id"] in LINEAGE:
        c["predecessors"] = LINEAGE[c["id"]]
for p in d["provinces"]:
    p["tile"] = TILES[p["id"]]
assert len(TILES) == len(d["provinces"]) == 52
assert len({tuple(t) for t in TILES.values()}) == 52
with open(os.path.join(HERE, "es-2019-04-vs-2016-06.json"), "w") as f:
    json.dump(d, f, ensure_ascii=False, indent=1)
    f.write("\n")
