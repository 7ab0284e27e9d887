"""The built zip in Blender (the bpy module, background, in a fresh process with its own user
folder): install through Blender's extension install, enable, operators/panels/menus present,
panels and preferences draw with valid UILayout calls, background-mode errors say what to do,
and disabling leaves nothing of ours registered."""

OPERATORS = ["build_proxy_mesh", "cancel", "cancel_setup", "check_setup", "download_checkpoint", "generate_views",
             "import_views", "install_server", "new_seed", "preview_input", "queue_add", "queue_cancel_all",
             "queue_clear", "queue_start", "remove_server_env", "start_server", "stop_server", "try_random_weights",
             "unload_model"]
NOTHING = {"operators": [], "types": [], "scene_settings": False, "add_image_menu": [], "import_menu": [],
           "timers": []}


def test_install_enable_draw_disable(extension_zip, data_dir, run_bpy_script):
    result = run_bpy_script("bl_install_cycle.py", extension_zip, data_dir / "testset" / "cat.png")
    assert result["install"] == ["FINISHED"] and result["enabled"]

    registered = result["registered"]
    assert registered["operators"] == OPERATORS
    assert {"GLIMPSE3D_OT_generate_views", "GLIMPSE3D_OT_import_views", "GLIMPSE3D_PT_main",
            "GLIMPSE3D_PT_model_settings", "GLIMPSE3D_PT_import_settings", "GLIMPSE3D_PT_queue"} <= set(registered["types"])
    assert registered["scene_settings"] and registered["timers"] == ["tick"]
    assert registered["add_image_menu"] == ["menu_func_add_image"]
    assert registered["import_menu"] == ["menu_func_import"]
    # Unsaved file: the user data folder, never the extension's folder (uninstalling deletes it).
    assert "/extensions/" not in result["output_folder"]
    assert result["output_folder"].endswith("user_data/Glimpse3D/views")

    drawn = result["drawn"]
    assert "Server: Stopped" in drawn["stopped"] and "Generate Views" in drawn["stopped"]
    assert "Step 3/50 · ETA 12 s" in drawn["busy"]  # the progress bar's text
    assert "Cancel" in drawn["busy"] and "Generate Views" not in drawn["busy"]
    assert "Server: Error" in drawn["error"]
    assert "(exit code 1)" in " ".join(drawn["error"])  # the message, wrapped to the sidebar
    assert "Your image" in drawn["stopped"] and "Your image" in drawn["image_input"]
    assert "Add image files or a folder, then Start." in drawn["queue_empty"]
    assert "Queue: 1 done, 1 failed, 1 waiting" in drawn["queue"]
    assert "The input image b.png is damaged." in drawn["queue"] and "Cancel All" in drawn["queue"]
    assert "python_path" in drawn["prefs"] and "server_url" in drawn["prefs_remote"]
    assert "low_memory" in drawn["prefs"] and "low_memory" not in drawn["prefs_remote"]  # local server only
    prefs_order = drawn["prefs"]
    assert prefs_order.index("precision") < prefs_order.index("low_memory") < prefs_order.index("start_mode")
    automatic_note = "Automatic: 16 at once, 4 on a low-memory server"
    assert result["batch_views_default"] == 0
    assert "batch_views" in drawn["stopped"] and automatic_note in drawn["stopped"]  # the default, 0
    assert "batch_views" in drawn["batch_views_4"] and automatic_note not in drawn["batch_views_4"]
    assert result["low_memory_argv"] == {"False": [False, False], "True": [True, True]}

    assert result["datablock_file"].endswith("cat.png")  # a loaded file is sent as it is
    copy = result["generated_copy"]
    assert copy == {"name": "made_in_blender.png", "png": True, "datablock_path_kept": True, "format": "PNG"}

    errors = result["errors"]
    assert "does not exist" in errors["missing_file"]
    assert "no image named 'nope'" in errors["missing_image"]
    assert "Server Python" in errors["no_python"] and "GLIMPSE_SERVER_PYTHON" in errors["no_python"]
    assert "Crop size must be -1" in errors["bad_crop"]
    assert "not running" in errors["unload_stopped"]
    assert result["check_setup"] == ["FINISHED"]
    assert ["missing", "server Python"] in result["setup_report"]

    # The API's stable name exists exactly while the extension is enabled.
    assert result["api_while_enabled"] == "bl_ext.user_default.glimpse_syncdreamer.api"
    assert not result["api_after_disable"] and result["api_reenabled"]
    assert result["after_disable"] == NOTHING
    assert result["reenabled_ops"] == OPERATORS and result["reenabled_types"] == registered["types"]
    assert result["after_second_disable"] == NOTHING
