/* placeholder: being written */
typedef int placeholder_boot_params;
