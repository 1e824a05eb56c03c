using System.Reflection;

namespace IsolateGrains.Guest;

/// <summary>
/// Finds assemblies, types and methods by name inside the sandbox, with errors that say exactly which
/// part was missing: the assembly, the type in that assembly, or the method on that type.
/// </summary>
internal static class GuestTypes
{
    private const BindingFlags AllMembers = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static;
    private static readonly Dictionary<string, Type> s_typesByQualifiedName = new(StringComparer.Ordinal);
    private static readonly Dictionary<(Type, string, int, string), MethodInfo> s_methods = new();

    /// <summary>Loads an assembly by (full or simple) name.</summary>
    public static Assembly LoadAssembly(string assemblyName)
    {
        try
        {
            return Assembly.Load(new AssemblyName(assemblyName));
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or ArgumentException)
        {
            throw new ResolutionException(
                $"Assembly '{assemblyName}' could not be loaded in the sandbox: no assembly loader of the host provides it " +
                "(see IsolatedRuntimeHost.WithBinDirectoryAssemblyLoader and WithAssemblyLoader).");
        }
    }

    /// <summary>Finds a type by full name (<c>Namespace.Outer+Inner</c>) in an assembly.</summary>
    public static Type FindType(string assemblyName, string typeName)
    {
        var assembly = LoadAssembly(assemblyName);
        return assembly.GetType(typeName, throwOnError: false)
            ?? throw new ResolutionException($"Type '{typeName}' was not found in assembly '{assembly.GetName().Name}'.");
    }

    /// <summary>Finds a type by assembly-qualified name (how the host names argument types).</summary>
    public static Type FindQualifiedType(string qualifiedName)
    {
        if (!s_typesByQualifiedName.TryGetValue(qualifiedName, out var type))
        {
            type = Type.GetType(qualifiedName, AssemblyResolver, TypeResolver, throwOnError: true)!;
            s_typesByQualifiedName[qualifiedName] = type;
        }
        return type;
    }

    /// <summary>
    /// Finds a method by name and parameter count (-1: any count). When several match, the argument
    /// types pick one (null arguments match any reference type); still several is an ambiguity error.
    /// </summary>
    public static MethodInfo FindMethod(Type type, string name, int parameterCount, Type?[]? argumentTypes)
    {
        var signature = argumentTypes is null ? "" : string.Join(",", argumentTypes.Select(t => t?.FullName ?? "null"));
        var key = (type, name, parameterCount, signature);
        if (s_methods.TryGetValue(key, out var cached))
        {
            return cached;
        }

        var named = new List<MethodInfo>();
        for (var current = type; current is not null; current = current.BaseType)
        {
            // Open generic methods cannot be invoked without type arguments, which the host does not send.
            named.AddRange(current.GetMethods(AllMembers | BindingFlags.DeclaredOnly).Where(m => m.Name == name && !m.ContainsGenericParameters));
        }
        if (named.Count == 0)
        {
            throw new ResolutionException($"Method '{name}' was not found on type '{type.FullName}'.");
        }
        var candidates = parameterCount < 0 ? named : named.Where(m => m.GetParameters().Length == parameterCount).ToList();
        if (candidates.Count == 0)
        {
            var counts = string.Join(", ", named.Select(m => m.GetParameters().Length).Distinct().Order());
            throw new ResolutionException(
                $"Method '{name}' on type '{type.FullName}' takes {counts} parameter(s), not {parameterCount}.");
        }
        if (candidates.Count > 1 && argumentTypes is not null)
        {
            candidates = candidates.Where(m => Accepts(m, argumentTypes)).ToList();
            // Prefer exact type matches among the applicable ones.
            var exact = candidates.Where(m => m.GetParameters().Select(p => p.ParameterType).SequenceEqual(argumentTypes.Select(t => t ?? typeof(object)))).ToList();
            if (exact.Count == 1)
            {
                candidates = exact;
            }
        }
        if (candidates.Count != 1)
        {
            throw new ResolutionException(candidates.Count == 0
                ? $"No overload of '{type.FullName}.{name}' accepts arguments ({signature})."
                : $"The call to '{type.FullName}.{name}' is ambiguous between {candidates.Count} overloads; pass arguments whose types pick one.");
        }
        s_methods[key] = candidates[0];
        return candidates[0];
    }

    /// <summary>Finds the constructor that accepts the given argument types.</summary>
    public static ConstructorInfo FindConstructor(Type type, Type?[] argumentTypes)
    {
        var constructors = type.GetConstructors(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)
            .Where(c => c.GetParameters().Length == argumentTypes.Length && Accepts(c, argumentTypes))
            .ToList();
        if (constructors.Count > 1)
        {
            var exact = constructors.Where(c => c.GetParameters().Select(p => p.ParameterType).SequenceEqual(argumentTypes.Select(t => t ?? typeof(object)))).ToList();
            if (exact.Count == 1)
            {
                constructors = exact;
            }
        }
        return constructors.Count switch
        {
            1 => constructors[0],
            0 => throw new ResolutionException(
                $"Type '{type.FullName}' has no constructor taking ({string.Join(", ", argumentTypes.Select(t => t?.Name ?? "null"))})."),
            _ => throw new ResolutionException($"Creating '{type.FullName}' is ambiguous between {constructors.Count} constructors."),
        };
    }

    private static bool Accepts(MethodBase method, Type?[] argumentTypes)
    {
        var parameters = method.GetParameters();
        if (parameters.Length != argumentTypes.Length)
        {
            return false;
        }
        for (var i = 0; i < parameters.Length; i++)
        {
            var parameterType = parameters[i].ParameterType;
            var argumentType = argumentTypes[i];
            var fits = argumentType is null
                ? !parameterType.IsValueType || Nullable.GetUnderlyingType(parameterType) is not null
                : parameterType.IsAssignableFrom(argumentType) || Nullable.GetUnderlyingType(parameterType) == argumentType;
            if (!fits)
            {
                return false;
            }
        }
        return true;
    }

    private static Assembly? AssemblyResolver(AssemblyName name) => LoadAssembly(name.FullName);

    private static Type? TypeResolver(Assembly? assembly, string name, bool ignoreCase) =>
        assembly is null ? Type.GetType(name, throwOnError: false, ignoreCase) : assembly.GetType(name, throwOnError: false, ignoreCase);
}

/// <summary>An assembly, type or method named by the host does not exist in the sandbox.</summary>
internal sealed class ResolutionException(string message) : Exception(message);
