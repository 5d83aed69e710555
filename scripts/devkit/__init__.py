"""What the scripts share and the tests import: a throwaway mosquitto, generated face media and photos.

Not shipped. Scripts in scripts/ import it as ``devkit``; those in its subfolders put scripts/ on
``sys.path`` first; pytest.ini puts scripts/ on the tests' path.
"""
