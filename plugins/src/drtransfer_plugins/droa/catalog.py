"""What DRoA accepts: its tracks (with their directions) and car shells (with their colours).

Facts read from aws-solutions/deepracer-on-aws v1.2.5 (``61af778``): ``source/libs/config/src/data/
tracks.json`` (trackId, enabledDirections, defaultDirection) and ``source/libs/lambda/src/workflow/
constants/simulation.ts`` (``SimAppCarShells``: DRoA shell + colour -> simapp ``BODY_SHELL_TYPE``).
Update them when DRoA adds tracks or shells.
"""

from __future__ import annotations

CW, CCW = "CLOCKWISE", "COUNTER_CLOCKWISE"
BOTH = (CW, CCW)

# trackId -> (enabled directions, default direction)
TRACKS: dict[str, tuple[tuple[str, ...], str]] = {
    "2024_reinvent_champ": (BOTH, CCW),
    "2022_april_open": (BOTH, CCW),
    "2022_april_pro": (BOTH, CCW),
    "2022_august_open": (BOTH, CCW),
    "2022_august_pro": (BOTH, CCW),
    "2022_july_open": ((CCW,), CCW),
    "2022_july_pro": (BOTH, CCW),
    "2022_june_open": (BOTH, CCW),
    "2022_june_pro": (BOTH, CCW),
    "2022_march_open": (BOTH, CCW),
    "2022_march_pro": (BOTH, CCW),
    "2022_may_open": (BOTH, CCW),
    "2022_may_pro": (BOTH, CCW),
    "2022_october_open": (BOTH, CCW),
    "2022_october_pro": (BOTH, CCW),
    "2022_reinvent_champ": (BOTH, CCW),
    "2022_september_open": (BOTH, CCW),
    "2022_september_pro": (BOTH, CCW),
    "2022_summit_speedway": (BOTH, CCW),
    "Albert": ((CW,), CW),
    "AmericasGeneratedInclStart": ((CCW,), CCW),
    "Aragon": ((CW,), CW),
    "arctic_open": (BOTH, CCW),
    "arctic_pro": (BOTH, CCW),
    "Austin": ((CCW,), CCW),
    "Belille": ((CW,), CW),
    "Bowtie_track": ((CCW,), CCW),
    "caecer_gp": ((CCW,), CCW),
    "caecer_loop": ((CCW,), CCW),
    "Canada_Training": ((CCW,), CCW),
    "China_track": ((CCW,), CCW),
    "dubai_open": (BOTH, CCW),
    "dubai_pro": ((CCW,), CCW),
    "FS_June2020": ((CW,), CW),
    "hamption_open": ((CCW,), CCW),
    "hamption_pro": ((CCW,), CCW),
    "July_2020": ((CW,), CW),
    "jyllandsringen_open": (BOTH, CCW),
    "jyllandsringen_pro": (BOTH, CCW),
    "LGSWide": ((CCW,), CCW),
    "Mexico_track": ((CCW,), CCW),
    "Monaco": ((CW,), CW),
    "Monaco_building": ((CW,), CW),
    "morgan_open": ((CCW,), CCW),
    "morgan_pro": ((CCW,), CCW),
    "New_York_Track": ((CCW,), CCW),
    "Oval_track": ((CCW,), CCW),
    "penbay_open": (BOTH, CCW),
    "penbay_pro": (BOTH, CCW),
    "red_star_open": ((CCW,), CCW),
    "red_star_pro": (BOTH, CCW),
    "reInvent2019_track": (BOTH, CCW),
    "reInvent2019_wide": (BOTH, CW),
    "reinvent_base": ((CCW,), CCW),
    "Singapore": ((CCW,), CCW),
    "Singapore_building": ((CCW,), CCW),
    "Spain_track": ((CW,), CW),
    "thunder_hill_open": ((CCW,), CCW),
    "thunder_hill_pro": (BOTH, CCW),
    "Tokyo_Training_track": ((CCW,), CCW),
    "Vegas_track": ((CCW,), CCW),
    "Virtual_May19_Train_track": ((CCW,), CCW),
}

CAR_COLORS = frozenset({
    "BLACK", "BLUE", "BROWN", "GOLDEN", "GOLDENPINK", "GREEN", "GREY", "ORANGE", "PINK", "PURPLE", "RED",
    "SKY_BLUE", "TEAL", "WHITE", "YELLOW",
})

DEEPRACER_SHELL_ID = "deepracer"  # BODY_SHELL_TYPE of the plain DeepRacer car, coloured by CAR_COLOR

# DRoA car shell -> {colour: simapp BODY_SHELL_TYPE}
CAR_SHELLS: dict[str, dict[str, str]] = {
    "AGATHA": {"GREY": "f1_car_mercedes_08"},
    "AMAZON_EDV": {"PURPLE": "f1_amazon_van_purple_with_wheel", "WHITE": "f1_amazon_van_white_with_wheel"},
    "BAJA_TRUCK": {"TEAL": "f1_baja_truck_05", "ORANGE": "f1_baja_truck_03"},
    "BANANA": {"BLACK": "f1_car_banana_01"},
    "BIKE": {"BLUE": "f1_august_bike_02_with_wheel", "RED": "f1_august_bike_01_with_wheel"},
    "BUGGY": {"WHITE": "f1_september_bug_01_with_wheel", "PURPLE": "f1_september_bug_02_with_wheel"},
    "CLOWN": {"YELLOW": "f1_car_clown_01"},
    "COMPACT": {"RED": "f1_june_car_01", "PURPLE": "f1_june_car_02"},
    "DEEPRACER": {color: DEEPRACER_SHELL_ID for color in ("BLACK", "BLUE", "GREY", "ORANGE", "PURPLE", "RED", "WHITE")},
    "DOG_VAN": {"BROWN": "f1_dog_van"},
    "DRAGON": {"BROWN": "f1_dragon"},
    "DUNE_BUGGY": {"RED": "f1_dune_buggy_01", "GOLDEN": "f1_dune_buggy_07"},
    "F1": {"RED": "f1_2021"},
    "F1_NUDIE": {"PURPLE": "f1_nudie_purple_with_wheel", "ORANGE": "f1_nudie_orange_with_wheel",
                 "WHITE": "f1_nudie_white_with_wheel"},
    "FAMILY_WAGON": {"GREEN": "f1_october_wagon_01_with_wheel", "PURPLE": "f1_october_wagon_02_with_wheel"},
    "GT": {"PURPLE": "f1_december_car_01_with_wheel", "RED": "f1_december_car_02_with_wheel"},
    "HOT_ROD": {"PURPLE": "f1_hotrod_03", "ORANGE": "fl_hotrod_02"},
    "KART": {"RED": "f1_kart"},
    "LORRY": {"PURPLE": "f1_lorry_01"},
    "LUNAR_ROVER": {"BROWN": "f1_lunar_rover", "GOLDEN": "f1_july_car_03_with_wheel"},
    "MARS_ROVER": {"WHITE": "f1_mars_rover_with_wheel"},
    "MONSTER_TRUCK": {"PURPLE": "f1_monster_truck_01"},
    "NELL": {"RED": "f1_mustang_eleanor_01", "BLACK": "f1_mustang_eleanor_02", "YELLOW": "f1_mustang_eleanor_03"},
    "RETRO_FUTURISTIC": {"PURPLE": "f1_car_retro_01"},
    "ROGUE_ROD": {"ORANGE": "f1_rogue_01"},
    "SNAIL": {"PINK": "f1_snail"},
    "TRON": {"BLUE": "f1_car_tron_01", "RED": "f1_car_tron_02", "GOLDEN": "f1_car_tron_03", "WHITE": "f1_car_tron_04",
             "SKY_BLUE": "f1_car_tron_05", "GREEN": "f1_car_tron_06", "PURPLE": "f1_car_tron_07",
             "YELLOW": "f1_car_tron_08", "GREY": "f1_car_tron_09", "GOLDENPINK": "f1_car_tron_10"},
    "WAGON": {"PINK": "f1_july_car_01_with_wheel", "BLUE": "f1_july_car_02_with_wheel"},
}
