using System.Reflection;

namespace IsolateGrains.Engine;

/// <summary>
/// Finds the files a sandbox is made of: <c>dotnet.native.wasm</c> and the BCL from the Mono
/// browser-wasm runtime pack (shipped in <c>isolategrains-wasm/</c> beside the host library), and the
/// guest runtime assemblies (the library that runs inside every sandbox and its serializer).
/// </summary>
internal sealed class WasmRuntimePack
{
    /// <summary>The folder, beside the application or the library, that holds the runtime pack.</summary>
    public const string FolderName = "isolategrains-wasm";

    private WasmRuntimePack(string directory, IReadOnlyList<string> bclFiles, IReadOnlyList<Assembly> guestAssemblies, IReadOnlyList<string> guestFiles)
    {
        Directory = directory;
        BclFiles = bclFiles;
        GuestAssemblies = guestAssemblies;
        GuestFiles = guestFiles;
    }

    /// <summary>The runtime pack folder.</summary>
    public string Directory { get; }

    /// <summary>The Mono runtime module.</summary>
    public string NativeModulePath => Path.Combine(Directory, "dotnet.native.wasm");

    /// <summary>CoreLib, which boot hands to Mono directly.</summary>
    public string CoreLibPath => Path.Combine(Directory, "bcl", "System.Private.CoreLib.dll");

    /// <summary>Every BCL assembly (served at <c>/bcl</c>, loaded on demand).</summary>
    public IReadOnlyList<string> BclFiles { get; }

    /// <summary>The guest runtime and its dependencies, as loaded in this process.</summary>
    public IReadOnlyList<Assembly> GuestAssemblies { get; }

    /// <summary>The files of <see cref="GuestAssemblies"/>, in the same order (served at <c>/app</c>).</summary>
    public IReadOnlyList<string> GuestFiles { get; }

    /// <summary>
    /// The version of the Mono browser-wasm runtime pack this library was built with and ships (recorded
    /// by the build as assembly metadata, since the shipped files carry no version of their own).
    /// </summary>
    public static string RuntimePackVersion { get; } =
        typeof(WasmRuntimePack).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "MonoWasmRuntimePackVersion")?.Value ?? "unknown";

    /// <summary>The guest runtime assembly's simple name.</summary>
    public static string GuestRuntimeAssemblyName => typeof(Guest.GuestDispatcher).Assembly.GetName().Name!;

    /// <summary>Locates the pack or throws an exception that says where it looked.</summary>
    public static WasmRuntimePack Locate()
    {
        var candidates = new List<string> { Path.Combine(AppContext.BaseDirectory, FolderName) };
        var libraryDirectory = Path.GetDirectoryName(typeof(WasmRuntimePack).Assembly.Location);
        if (!string.IsNullOrEmpty(libraryDirectory))
        {
            candidates.Add(Path.Combine(libraryDirectory, FolderName));
        }
        var directory = candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "dotnet.native.wasm")))
            ?? throw new IsolatedException(
                $"The Mono WebAssembly runtime was not found (looked for dotnet.native.wasm in {string.Join(", ", candidates)}). " +
                "It is copied to the output by the IsolateGrains package; check that the build or publish output contains the isolategrains-wasm folder.");

        var bcl = System.IO.Directory.GetFiles(Path.Combine(directory, "bcl"), "*.dll").Order(StringComparer.Ordinal).ToArray();
        var guest = new[]
        {
            typeof(Guest.GuestDispatcher).Assembly,
            typeof(MessagePack.MessagePackSerializer).Assembly,
            typeof(MessagePack.MessagePackObjectAttribute).Assembly,
            Assembly.Load("Microsoft.NET.StringTools"),
        };
        var guestFiles = guest.Select(a => string.IsNullOrEmpty(a.Location)
            ? throw new IsolatedException($"Assembly '{a.GetName().Name}' has no file location (single-file publishing is not supported); the sandbox needs its bytes.")
            : a.Location).ToArray();
        return new WasmRuntimePack(directory, bcl, guest, guestFiles);
    }
}
